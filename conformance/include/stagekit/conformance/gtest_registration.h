// stagekit/conformance/gtest_registration.h — the link-time route: registers every conformance case as a GoogleTest test for one implementation.
// A case's ID becomes the test name under the given suite; not_supported becomes GTEST_SKIP with the
// reason, fail becomes a test failure with the reason, and the ID is recorded as property case_id.
#pragma once

#include <string>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

// Registers the cases of `profile` (strict: all) for the implementation made by `factory`.
void register_gtest_cases(const std::string& suite, ImplementationFactory factory, Profile profile = Profile::strict);

}  // namespace stagekit::conformance
