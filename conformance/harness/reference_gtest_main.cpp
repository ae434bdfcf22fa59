// GoogleTest binary running every conformance case against the reference implementation (the
// link-time route a vendor copies: register with its own factory, then RUN_ALL_TESTS).
#include <gtest/gtest.h>

#include "../adapter/reference_implementation.h"
#include "stagekit/conformance/gtest_registration.h"

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  stagekit::conformance::register_gtest_cases("Reference", &stagekit::conformance::make_reference_implementation);
  return RUN_ALL_TESTS();
}
