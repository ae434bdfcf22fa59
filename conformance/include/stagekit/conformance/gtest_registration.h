// stagekit/conformance/gtest_registration.h — the link-time route: every conformance case as a
// GoogleTest test for one implementation, in either of two forms.
//
//  1. Abstract tests (value-parameterized): the suite StagerConformance is defined by stagekit; a
//     vendor instantiates it with a factory in their own test binary:
//       using stagekit::conformance::StagerConformance;  // the macro needs the unqualified name
//       INSTANTIATE_TEST_SUITE_P(Acme, StagerConformance,
//                                stagekit::conformance::conformance_cases(&make_acme),
//                                stagekit::conformance::conformance_case_name);
//     giving tests Acme/StagerConformance.Case/stager_views_cpu_pin0_share0.
//  2. Dynamic registration before RUN_ALL_TESTS(): register_gtest_cases("Acme", &make_acme) gives
//     tests Acme.stager.views.cpu.pin0_share0 (the case ID itself as the test name).
//
// Either way not_supported and waived become GTEST_SKIP with the reason, fail/crash/timeout a test
// failure with the reason, and the case ID, profile, source and outcome are recorded as test
// properties (case_id, ...) in the XML. Cases run in the test's process (no fork isolation).
#pragma once

#include <gtest/gtest.h>

#include <string>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

// Registers the cases of `profile` (strict: all) for the implementation made by `factory`.
void register_gtest_cases(const std::string& suite, const ImplementationFactory& factory,
                          Profile profile = Profile::strict);

// The parameter of the abstract suite: one case and the factory of the implementation under test.
struct ConformanceCaseParam {
  const Case* conformance_case = nullptr;
  ImplementationFactory factory;
};
// Printed by GoogleTest in messages: the case ID.
void PrintTo(const ConformanceCaseParam& param, std::ostream* os);

class StagerConformance : public testing::TestWithParam<ConformanceCaseParam> {};

// Every case of `profile` whose ID matches `filter` (the glob syntax of stagekit-conform --filter),
// sorted by ID, for the implementation made by `factory`.
[[nodiscard]] testing::internal::ParamGenerator<ConformanceCaseParam> conformance_cases(
    const ImplementationFactory& factory, Profile profile = Profile::strict, const std::string& filter = "");
// The case ID with every character GoogleTest does not allow in a name replaced by '_'.
[[nodiscard]] std::string conformance_case_name(const testing::TestParamInfo<ConformanceCaseParam>& info);

}  // namespace stagekit::conformance
