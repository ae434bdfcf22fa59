#include "stagekit/conformance/gtest_registration.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace stagekit::conformance {
namespace {

class ConformanceTest : public testing::Test {
 public:
  ConformanceTest(const Case& c, ImplementationFactory factory) : case_(c), factory_(std::move(factory)) {}

  void TestBody() override {
    RecordProperty("case_id", case_.info.id);
    RecordProperty("profile", std::string(profile_name(case_.info.profile)));
    RecordProperty("source", case_.info.source);
    auto impl = factory_();
    ASSERT_NE(impl, nullptr) << "the implementation factory returned nothing";
    const CaseResult r = run_case(case_, *impl);
    RecordProperty("outcome", std::string(outcome_name(r.outcome)));
    switch (r.outcome) {
      case Outcome::pass: return;
      case Outcome::not_supported: GTEST_SKIP() << "not_supported: " << r.reason; break;
      case Outcome::waived: GTEST_SKIP() << "waived: " << r.reason; break;
      default: FAIL() << outcome_name(r.outcome) << ": " << r.reason;
    }
  }

 private:
  const Case& case_;
  ImplementationFactory factory_;
};

}  // namespace

void register_gtest_cases(const std::string& suite, ImplementationFactory factory, Profile profile) {
  std::vector<const Case*> cases;
  for (const Case& c : CaseRegistry::instance().cases()) cases.push_back(&c);
  std::sort(cases.begin(), cases.end(), [](const Case* a, const Case* b) { return a->info.id < b->info.id; });
  for (const Case* cp : cases) {
    const Case& c = *cp;
    if (profile == Profile::upstream && c.info.profile != Profile::upstream) continue;
    testing::RegisterTest(suite.c_str(), c.info.id.c_str(), nullptr, nullptr, __FILE__, __LINE__,
                          [&c, factory]() -> testing::Test* { return new ConformanceTest(c, factory); });
  }
}

}  // namespace stagekit::conformance
