// Expectations and waivers: matching precedence, verdicts, waiver rules and file errors.
#include <gtest/gtest.h>

#include "runner/expectations.h"

namespace stagekit::conformance {
namespace {

CaseResult result(const std::string& id, Outcome outcome, std::string reason = {}) {
  CaseResult r;
  r.info.id = id;
  r.outcome = outcome;
  r.reason = std::move(reason);
  return r;
}

const char* kExpectations = R"({
  "schema_version": 1,
  "implementation": "acme",
  "expectations": {
    "*": "pass",
    "*.cuda.*": "not_supported",
    "stager.views.*": "fail",
    "stager.views.cpu.pin0_share0": {"outcome": "fail", "reason": "storage sharing"},
    "stager.limit_*": ["pass", "not_supported"],
    "stager.crashy.*": "crash"
  }
})";

TEST(Expectations, MostSpecificPatternWins) {
  const Expectations e = Expectations::parse(kExpectations, "inline");
  ASSERT_EQ(e.size(), 6U);
  EXPECT_EQ(e.match("stager.views.cpu.pin0_share0")->pattern, "stager.views.cpu.pin0_share0");
  EXPECT_EQ(e.match("stager.views.cpu.pin1_share0")->pattern, "stager.views.*");
  EXPECT_EQ(e.match("stager.views.cuda.pin1_share0")->pattern, "stager.views.*");  // more literal characters
  EXPECT_EQ(e.match("stager.caching.cuda.pin1_share0")->pattern, "*.cuda.*");
  EXPECT_EQ(e.match("stager.caching.cpu.pin1_share0")->pattern, "*");
  EXPECT_EQ(e.match("stager.limit_memlock_refused.cpu.pin1_share0")->describe(), "pass|not_supported");
}

TEST(Expectations, VerdictsFixRegressionDifference) {
  const Expectations e = Expectations::parse(kExpectations, "inline");
  auto verdict = [&](const CaseResult& r) { return judge(r, e.match(r.info.id)); };
  EXPECT_EQ(verdict(result("stager.caching.cpu.x", Outcome::pass)), Verdict::ok);
  EXPECT_EQ(verdict(result("stager.caching.cpu.x", Outcome::fail)), Verdict::regression);
  EXPECT_EQ(verdict(result("stager.caching.cpu.x", Outcome::crash)), Verdict::regression);
  EXPECT_EQ(verdict(result("stager.caching.cpu.x", Outcome::timeout)), Verdict::regression);
  EXPECT_EQ(verdict(result("stager.caching.cpu.x", Outcome::not_supported)), Verdict::difference);
  EXPECT_EQ(verdict(result("stager.views.cpu.pin1_share1", Outcome::pass)), Verdict::fix);
  EXPECT_EQ(verdict(result("stager.views.cpu.pin1_share1", Outcome::fail)), Verdict::ok);
  EXPECT_EQ(verdict(result("stager.views.cpu.pin1_share1", Outcome::crash)), Verdict::regression);  // worse
  EXPECT_EQ(verdict(result("stager.crashy.cpu.x", Outcome::fail)), Verdict::difference);  // better, not fixed
  EXPECT_EQ(verdict(result("stager.views.cpu.pin0_share0", Outcome::fail, "t: storage sharing: no")), Verdict::ok);
  EXPECT_EQ(verdict(result("stager.views.cpu.pin0_share0", Outcome::fail, "t: bytes: differ")), Verdict::difference);
  EXPECT_EQ(verdict(result("stager.limit_x.cpu.y", Outcome::not_supported)), Verdict::ok);
  EXPECT_EQ(judge(result("anything", Outcome::pass), nullptr), Verdict::missing);
}

TEST(Expectations, MalformedFilesNameTheFileAndTheKey) {
  auto error_of = [](const char* text) {
    try {
      (void)Expectations::parse(text, "acme.json");
    } catch (const InvalidArgument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("{").find("acme.json: not valid JSON"), std::string::npos);
  EXPECT_NE(error_of(R"({"expectations": {}})").find("schema_version"), std::string::npos);
  EXPECT_NE(error_of(R"({"schema_version": 1})").find("missing \"expectations\""), std::string::npos);
  const std::string bad = error_of(R"({"schema_version": 1, "expectations": {"stager.*": "passed"}})");
  EXPECT_NE(bad.find("expectation 'stager.*'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("unknown outcome 'passed'"), std::string::npos) << bad;
  EXPECT_THROW((void)Expectations::load("/nonexistent/expect.json"), InvalidArgument);
}

TEST(Waivers, NeedReasonAndLinkAndCoverOnlyTheirOutcomes) {
  const Waivers w = Waivers::parse(R"({"schema_version": 1, "waivers": [
      {"cases": "stager.views.cuda.*", "reason": "driver bug 42", "link": "https://tracker.example/42"},
      {"cases": "stager.slow.*", "reason": "slow CI", "link": "https://tracker.example/7", "outcomes": ["timeout"]}]})",
                                   "w.json");
  CaseResult r = result("stager.views.cuda.pin1_share0", Outcome::fail, "x: bytes: differ");
  ASSERT_NE(apply_waiver(r, w), nullptr);
  EXPECT_EQ(r.outcome, Outcome::waived);
  EXPECT_NE(r.reason.find("https://tracker.example/42"), std::string::npos);
  EXPECT_NE(r.reason.find("was fail: x: bytes: differ"), std::string::npos);
  CaseResult passing = result("stager.views.cuda.pin1_share0", Outcome::pass);
  EXPECT_EQ(apply_waiver(passing, w), nullptr);
  CaseResult slow_fail = result("stager.slow.cpu", Outcome::fail);
  EXPECT_EQ(apply_waiver(slow_fail, w), nullptr);
  CaseResult slow_timeout = result("stager.slow.cpu", Outcome::timeout);
  EXPECT_NE(apply_waiver(slow_timeout, w), nullptr);

  EXPECT_THROW((void)Waivers::parse(R"({"schema_version": 1, "waivers": [{"cases": "a", "reason": "r"}]})", "w"),
               InvalidArgument);
  EXPECT_THROW((void)Waivers::parse(R"({"schema_version": 1, "waivers": [{"cases": "a", "reason": "r",
                                        "link": "tracker 42"}]})",
                                    "w"),
               InvalidArgument);
  EXPECT_THROW((void)Waivers::parse(R"({"schema_version": 1, "waivers": [{"cases": "a", "reason": "",
                                        "link": "https://x"}]})",
                                    "w"),
               InvalidArgument);
}

TEST(Expectations, WrittenFromAResultRoundTrips) {
  const std::vector<CaseResult> results = {result("a.b", Outcome::pass), result("a.c", Outcome::fail),
                                           result("a.d", Outcome::not_supported)};
  const Expectations e = Expectations::parse(expectations_from(results, "acme"), "written");
  for (const CaseResult& r : results) EXPECT_EQ(judge(r, e.match(r.info.id)), Verdict::ok) << r.info.id;
  EXPECT_EQ(judge(result("a.b", Outcome::fail), e.match("a.b")), Verdict::regression);
}

}  // namespace
}  // namespace stagekit::conformance
