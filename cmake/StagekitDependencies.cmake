# Finds stagekit's dependencies. Required ones come from Debian packages (see ci/install-deps.sh);
# optional ones follow the AUTO/ON/OFF rule of StagekitOptions.cmake.

find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
# The fuzz build (STAGEKIT_FUZZING) compiles only the value model and the replica format: it needs
# Threads, fmt, absl and xxHash, and none of the tools, tests, benchmarks or optional backends.
if(NOT STAGEKIT_FUZZING)
  find_package(nlohmann_json 3.10 REQUIRED)
  find_package(CLI11 CONFIG QUIET)
  if(NOT CLI11_FOUND)
    find_path(STAGEKIT_CLI11_INCLUDE CLI/CLI.hpp)
    if(NOT STAGEKIT_CLI11_INCLUDE)
      message(FATAL_ERROR "CLI11 not found: install Debian's libcli11-dev (ci/install-deps.sh does)")
    endif()
    add_library(CLI11::CLI11 INTERFACE IMPORTED)
    target_include_directories(CLI11::CLI11 INTERFACE "${STAGEKIT_CLI11_INCLUDE}")
  endif()
  find_package(benchmark REQUIRED)
endif()
find_package(absl REQUIRED)
# xxHash (Debian's libxxhash-dev): the checksums of replica files.
find_path(STAGEKIT_XXHASH_INCLUDE xxhash.h)
find_library(STAGEKIT_XXHASH_LIBRARY xxhash)
if(NOT STAGEKIT_XXHASH_INCLUDE OR NOT STAGEKIT_XXHASH_LIBRARY)
  message(FATAL_ERROR "xxHash not found: install Debian's libxxhash-dev (ci/install-deps.sh does)")
endif()
if(NOT TARGET stagekit_xxhash)
  add_library(stagekit_xxhash INTERFACE IMPORTED)
  target_include_directories(stagekit_xxhash INTERFACE "${STAGEKIT_XXHASH_INCLUDE}")
  target_link_libraries(stagekit_xxhash INTERFACE "${STAGEKIT_XXHASH_LIBRARY}")
endif()
if(STAGEKIT_BUILD_TESTS AND NOT STAGEKIT_FUZZING)
  find_package(GTest REQUIRED)
endif()

# --- CUDA runtime (no kernels: the runtime API is called from ordinary C++) ----------------------
set(STAGEKIT_HAVE_CUDA 0)
if(NOT STAGEKIT_WITH_CUDA STREQUAL "OFF" AND NOT STAGEKIT_FUZZING)
  if(NOT DEFINED CUDAToolkit_ROOT AND EXISTS /usr/local/cuda)
    set(CUDAToolkit_ROOT /usr/local/cuda)
  endif()
  find_package(CUDAToolkit QUIET)
  if(CUDAToolkit_FOUND AND TARGET CUDA::cudart)
    set(STAGEKIT_HAVE_CUDA 1)
  elseif(STAGEKIT_WITH_CUDA STREQUAL "ON")
    message(FATAL_ERROR "STAGEKIT_WITH_CUDA=ON but no CUDA toolkit with libcudart was found. "
      "Set CUDAToolkit_ROOT to the toolkit (e.g. -DCUDAToolkit_ROOT=/usr/local/cuda) or "
      "configure with -DSTAGEKIT_WITH_CUDA=OFF.")
  endif()
endif()

# --- NCCL (only with CUDA) ------------------------------------------------------------------------
set(STAGEKIT_HAVE_NCCL 0)
if(NOT STAGEKIT_WITH_NCCL STREQUAL "OFF" AND NOT STAGEKIT_FUZZING)
  if(STAGEKIT_HAVE_CUDA)
    set(_nccl_hints ${NCCL_HOME} $ENV{NCCL_HOME} ${CUDAToolkit_LIBRARY_ROOT} ${CUDAToolkit_ROOT} /usr/local/cuda)
    find_path(STAGEKIT_NCCL_INCLUDE nccl.h HINTS ${_nccl_hints} PATH_SUFFIXES include)
    find_library(STAGEKIT_NCCL_LIBRARY nccl HINTS ${_nccl_hints} PATH_SUFFIXES lib lib64)
    if(STAGEKIT_NCCL_INCLUDE AND STAGEKIT_NCCL_LIBRARY)
      set(STAGEKIT_HAVE_NCCL 1)
      add_library(stagekit_nccl INTERFACE IMPORTED)
      target_include_directories(stagekit_nccl INTERFACE "${STAGEKIT_NCCL_INCLUDE}")
      target_link_libraries(stagekit_nccl INTERFACE "${STAGEKIT_NCCL_LIBRARY}" CUDA::cudart)
    endif()
  endif()
  if(NOT STAGEKIT_HAVE_NCCL AND STAGEKIT_WITH_NCCL STREQUAL "ON")
    message(FATAL_ERROR "STAGEKIT_WITH_NCCL=ON but NCCL was not found (it also needs CUDA). "
      "Set NCCL_HOME to the NCCL install prefix, enable CUDA (STAGEKIT_WITH_CUDA), or configure "
      "with -DSTAGEKIT_WITH_NCCL=OFF.")
  endif()
endif()

# --- MPI ----------------------------------------------------------------------------------------------
set(STAGEKIT_HAVE_MPI 0)
if(NOT STAGEKIT_WITH_MPI STREQUAL "OFF" AND NOT STAGEKIT_FUZZING)
  find_package(MPI QUIET COMPONENTS C)
  if(MPI_C_FOUND)
    set(STAGEKIT_HAVE_MPI 1)
    # The launcher for tests: Open MPI refuses root and more ranks than cores without these flags.
    set(STAGEKIT_MPIRUN ${MPIEXEC_EXECUTABLE})
    set(STAGEKIT_MPIRUN_IS_OPEN_MPI FALSE)
    execute_process(COMMAND ${MPIEXEC_EXECUTABLE} --version OUTPUT_VARIABLE _stagekit_mpiexec_version
      ERROR_VARIABLE _stagekit_mpiexec_version TIMEOUT 30)
    if(_stagekit_mpiexec_version MATCHES "Open MPI|OpenRTE")
      set(STAGEKIT_MPIRUN_IS_OPEN_MPI TRUE)
      list(APPEND STAGEKIT_MPIRUN --allow-run-as-root --oversubscribe)
    endif()
  elseif(STAGEKIT_WITH_MPI STREQUAL "ON")
    message(FATAL_ERROR "STAGEKIT_WITH_MPI=ON but no MPI was found. Install Debian's libopenmpi-dev "
      "and openmpi-bin (ci/install-deps.sh does), set MPI_HOME, or configure with "
      "-DSTAGEKIT_WITH_MPI=OFF.")
  endif()
endif()

# --- Python (the torch implementation kind) -------------------------------------------------------
set(STAGEKIT_HAVE_PYTHON 0)
if(NOT STAGEKIT_WITH_PYTHON STREQUAL "OFF" AND NOT STAGEKIT_FUZZING)
  find_package(Python3 QUIET COMPONENTS Interpreter Development.Embed)
  find_package(pybind11 CONFIG QUIET)
  if(Python3_FOUND AND Python3_Development.Embed_FOUND AND pybind11_FOUND)
    set(STAGEKIT_HAVE_PYTHON 1)
  elseif(STAGEKIT_WITH_PYTHON STREQUAL "ON")
    message(FATAL_ERROR "STAGEKIT_WITH_PYTHON=ON but an embeddable Python 3 with pybind11 was not found "
      "(Python3: '${Python3_EXECUTABLE}', embed: ${Python3_Development.Embed_FOUND}, pybind11: ${pybind11_FOUND}). "
      "Install Debian's python3-dev and pybind11-dev (ci/install-deps.sh does), set Python3_EXECUTABLE, or "
      "configure with -DSTAGEKIT_WITH_PYTHON=OFF.")
  endif()
endif()

function(stagekit_print_configuration_summary)
  message(STATUS "stagekit ${PROJECT_VERSION} configuration:")
  message(STATUS "  compiler        ${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION}")
  message(STATUS "  build type      ${CMAKE_BUILD_TYPE}")
  message(STATUS "  sanitizers      '${STAGEKIT_SANITIZE}' (left out: '${STAGEKIT_SANITIZE_SKIP}')")
  message(STATUS "  CUDA            ${STAGEKIT_WITH_CUDA} -> ${STAGEKIT_HAVE_CUDA} ${CUDAToolkit_VERSION}")
  message(STATUS "  NCCL            ${STAGEKIT_WITH_NCCL} -> ${STAGEKIT_HAVE_NCCL}")
  message(STATUS "  MPI             ${STAGEKIT_WITH_MPI} -> ${STAGEKIT_HAVE_MPI} ${MPI_C_VERSION}")
  message(STATUS "  Python (torch)  ${STAGEKIT_WITH_PYTHON} -> ${STAGEKIT_HAVE_PYTHON} ${Python3_EXECUTABLE}")
  message(STATUS "  tests           ${STAGEKIT_BUILD_TESTS}")
endfunction()
