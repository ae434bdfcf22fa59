# stagekit_add_conformance_plugin(<target> <source>...)
# Builds a conformance plugin: a MODULE library that stagekit-conform --impl loads. The sources
# define the entry point with STAGEKIT_CONFORMANCE_PLUGIN(factory) (stagekit/conformance/plugin.h).
# Symbols other than the entry point stay hidden, so two plugins never clash.
function(stagekit_add_conformance_plugin target)
  if(NOT ARGN)
    message(FATAL_ERROR "stagekit_add_conformance_plugin(${target}): give at least one source file")
  endif()
  add_library(${target} MODULE ${ARGN})
  target_link_libraries(${target} PRIVATE stagekit::conformance)
  set_target_properties(${target} PROPERTIES CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
  target_compile_features(${target} PRIVATE cxx_std_20)
endfunction()
