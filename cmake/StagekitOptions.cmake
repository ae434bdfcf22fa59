# Build options of stagekit. Optional dependencies are tri-state: AUTO (use if found), ON (required:
# a configure error names what to set when missing), OFF (never used; the code that needs it still
# builds and its cases report not_supported).

function(stagekit_tristate_option name doc default)
  set(${name} "${default}" CACHE STRING "${doc} (AUTO|ON|OFF)")
  set_property(CACHE ${name} PROPERTY STRINGS AUTO ON OFF)
  string(TOUPPER "${${name}}" value)
  if(NOT value MATCHES "^(AUTO|ON|OFF)$")
    message(FATAL_ERROR "${name} must be AUTO, ON or OFF (got '${${name}}')")
  endif()
  set(${name} "${value}" PARENT_SCOPE)
endfunction()

stagekit_tristate_option(STAGEKIT_WITH_CUDA "Build the CUDA code paths (runtime API, no kernels)" AUTO)
stagekit_tristate_option(STAGEKIT_WITH_NCCL "Build the NCCL communicator (needs CUDA)" AUTO)
stagekit_tristate_option(STAGEKIT_WITH_MPI "Build the MPI communicator and mpirun test runs" AUTO)
stagekit_tristate_option(STAGEKIT_WITH_PYTHON
  "Build the torch implementation kind (an embedded CPython, pybind11) for Python stagers" AUTO)
# The interpreter the torch kind embeds: it must import torch (Debian's lives in /usr/bin).
if(EXISTS /usr/bin/python3 AND NOT DEFINED Python3_EXECUTABLE)
  set(Python3_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "The Python the torch kind embeds")
endif()

option(STAGEKIT_BUILD_TESTS "Build the unit tests and the conformance test binaries" ON)
option(STAGEKIT_BUILD_BENCHMARKS "Build the performance harness (perf/: stagekit-bench, stagekit-dist-bench)" ON)
option(STAGEKIT_WERROR "Treat compiler warnings as errors" OFF)
option(STAGEKIT_FUZZING "Build only the value model, the replica format and the fuzz targets (clang, libFuzzer)" OFF)
set(STAGEKIT_SANITIZE "" CACHE STRING "Sanitizers to build with: '', 'address,undefined' or 'thread'")
set(STAGEKIT_SANITIZE_SKIP "" CACHE STRING
  "Checks of STAGEKIT_SANITIZE left out (-fno-sanitize=...), e.g. 'null,alignment': the asan preset's, to build faster")
