// GoogleTest binary running every conformance case against the reference implementation through
// the abstract suite, exactly as a vendor's test binary does with its own factory.
#include <gtest/gtest.h>

#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/gtest_registration.h"

namespace sc = stagekit::conformance;
using sc::StagerConformance;  // INSTANTIATE_TEST_SUITE_P needs the suite's unqualified name

INSTANTIATE_TEST_SUITE_P(Reference, StagerConformance, sc::conformance_cases(&sc::make_reference_implementation),
                         sc::conformance_case_name);
