#include "stagekit/conformance/gtest_registration.h"

#include <algorithm>
#include <cctype>
#include <ostream>
#include <vector>

#include "runner/case_filter.h"

namespace stagekit::conformance {
namespace {

std::vector<const Case*> sorted_cases(Profile profile, const CaseFilter& filter) {
  std::vector<const Case*> cases;
  for (const Case& c : CaseRegistry::instance().cases()) {
    if (!in_profile(c.info.profile, profile)) continue;
    if (filter.matches(c.info.id)) cases.push_back(&c);
  }
  std::sort(cases.begin(), cases.end(), [](const Case* a, const Case* b) { return a->info.id < b->info.id; });
  return cases;
}

// Runs one case against a fresh implementation and turns its outcome into GoogleTest's terms.
void run_as_gtest(const Case& c, const ImplementationFactory& factory) {
  testing::Test::RecordProperty("case_id", c.info.id);
  testing::Test::RecordProperty("profile", std::string(profile_name(c.info.profile)));
  testing::Test::RecordProperty("source", c.info.source);
  auto impl = factory();
  ASSERT_NE(impl, nullptr) << "the implementation factory returned nothing";
  const CaseResult r = run_case(c, *impl);
  testing::Test::RecordProperty("outcome", std::string(outcome_name(r.outcome)));
  switch (r.outcome) {
    case Outcome::pass: return;
    case Outcome::not_supported: GTEST_SKIP() << "not_supported: " << r.reason; break;
    case Outcome::waived: GTEST_SKIP() << "waived: " << r.reason; break;
    default: FAIL() << outcome_name(r.outcome) << ": " << r.reason;
  }
}

class RegisteredConformanceTest : public testing::Test {
 public:
  RegisteredConformanceTest(const Case& c, ImplementationFactory factory) : case_(c), factory_(std::move(factory)) {}
  void TestBody() override { run_as_gtest(case_, factory_); }

 private:
  const Case& case_;
  ImplementationFactory factory_;
};

}  // namespace

void register_gtest_cases(const std::string& suite, const ImplementationFactory& factory, Profile profile) {
  for (const Case* cp : sorted_cases(profile, CaseFilter{})) {
    const Case& c = *cp;
    testing::RegisterTest(suite.c_str(), c.info.id.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [&c, factory]() -> testing::Test* { return new RegisteredConformanceTest(c, factory); });
  }
}

void PrintTo(const ConformanceCaseParam& param, std::ostream* os) {
  *os << (param.conformance_case != nullptr ? param.conformance_case->info.id : std::string("<no case>"));
}

testing::internal::ParamGenerator<ConformanceCaseParam> conformance_cases(const ImplementationFactory& factory,
                                                                          Profile profile, const std::string& filter) {
  std::vector<ConformanceCaseParam> params;
  for (const Case* c : sorted_cases(profile, CaseFilter(filter))) params.push_back({c, factory});
  return testing::ValuesIn(params);
}

std::string conformance_case_name(const testing::TestParamInfo<ConformanceCaseParam>& info) {
  std::string name = info.param.conformance_case->info.id;
  std::replace_if(
      name.begin(), name.end(), [](char ch) { return !std::isalnum(static_cast<unsigned char>(ch)); }, '_');
  return name;
}

TEST_P(StagerConformance, Case) { run_as_gtest(*GetParam().conformance_case, GetParam().factory); }
// A binary that registers the cases dynamically (register_gtest_cases) instantiates nothing.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(StagerConformance);

}  // namespace stagekit::conformance
