# stagekit_discover_tests(TARGET LABELS "label;..." [gtest_discover_tests options...])
#
# gtest_discover_tests (PRE_TEST discovery) with every label of the list LABELS on every discovered
# test.
# CMake 3.25's gtest_discover_tests flattens its PROPERTIES into one list, so `LABELS "a;b"` gives
# the label "a" and a stray property "b"; here the labels are set by a CTest include file that runs
# after the discovery, on the test list it produced.
# The labels the test presets select on: "threads" (tests that run threads in process; the tsan
# preset runs them), "tools", "docs", "nightly" (the asan preset leaves them out).
function(stagekit_discover_tests target)
  cmake_parse_arguments(PARSE_ARGV 1 arg "" "LABELS" "")
  gtest_discover_tests(${target} DISCOVERY_MODE PRE_TEST TEST_LIST ${target}_TESTS ${arg_UNPARSED_ARGUMENTS})
  set(labels_file "${CMAKE_CURRENT_BINARY_DIR}/${target}_labels.cmake")
  file(WRITE "${labels_file}"
    "if(NOT \"\${${target}_TESTS}\" STREQUAL \"\")\n"
    "  set_tests_properties(\${${target}_TESTS} PROPERTIES LABELS \"${arg_LABELS}\")\n"
    "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${labels_file}")
endfunction()
