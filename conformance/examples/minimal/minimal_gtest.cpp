// minimal_gtest.cpp — the link-time route: every conformance case as a GoogleTest test of the minimal
// stager, in this process (test names: Minimal.<case id>; not_supported cases are skipped).
#include <gtest/gtest.h>

#include "minimal_stager.h"
#include "stagekit/conformance/gtest_registration.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  stagekit::conformance::register_gtest_cases("Minimal", &stagekit_example::make_minimal_implementation);
  return RUN_ALL_TESTS();
}
