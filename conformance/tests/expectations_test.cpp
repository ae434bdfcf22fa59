// Expectations and waivers: matching precedence, verdicts, waiver rules, file errors, the
// undeclared-capability default, 0.1 keys and written files.
#include <gtest/gtest.h>

#include "runner/expectations.h"
#include "runner/legacy_ids.h"

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
    "stager.limit.*": ["pass", "not_supported"],
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
  EXPECT_EQ(e.match("stager.limit.memlock_refused.cpu.pin1_share0")->describe(), "pass|not_supported");
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
  EXPECT_EQ(verdict(result("stager.crashy.cpu.x", Outcome::fail)), Verdict::difference);            // better, not fixed
  EXPECT_EQ(verdict(result("stager.views.cpu.pin0_share0", Outcome::fail, "t: storage sharing: no")), Verdict::ok);
  EXPECT_EQ(verdict(result("stager.views.cpu.pin0_share0", Outcome::fail, "t: bytes: differ")), Verdict::difference);
  EXPECT_EQ(verdict(result("stager.limit.x.cpu.y", Outcome::not_supported)), Verdict::ok);
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
  EXPECT_NE(error_of(R"({"schema_version": 3, "expectations": {}})").find("\"schema_version\" must be 1 or 2"),
            std::string::npos);
  EXPECT_NE(error_of(R"({"schema_version": "2", "expectations": {}})").find("schema_version"), std::string::npos);
  EXPECT_EQ(error_of(R"({"schema_version": 2, "expectations": {"*": "pass"}})"), "no error");
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

// ---- the undeclared-capability default ----------------------------------------------------------

const char* kBroadKeys = R"({
  "schema_version": 2,
  "expectations": {
    "*": "pass",
    "stager.*": "pass",
    "*.cuda.*": ["pass", "not_supported"],
    "stager.non_blocking_back_to_back.cpu.*": "fail",
    "utils.gather_dtensor*": "crash",
    "utils.gather*": "timeout"
  }
})";

TEST(ExpectationsDefault, UndeclaredCapabilityIsNotSupportedUnlessAKeyNamesTheFeature) {
  const Expectations e = Expectations::parse(kBroadKeys, "broad.json");
  // Broad keys ('*', 'stager.*', '*.cuda.*') do not override the default.
  const auto views = e.expected("stager.views.cpu.pin1_share0", "pin_memory");
  ASSERT_TRUE(views.has_value());
  EXPECT_EQ(views->outcomes, std::vector<Outcome>{Outcome::not_supported});
  EXPECT_EQ(views->describe(), "not_supported (reason containing 'does not declare the pin_memory capability')");
  EXPECT_EQ(e.expected("stager.views.cuda.pin0_share0", "cuda_sources")->outcomes,
            std::vector<Outcome>{Outcome::not_supported});
  // A key whose literal text spans area.feature does.
  EXPECT_EQ(e.expected("stager.non_blocking_back_to_back.cpu.pin0_share0", "non_blocking")->pattern,
            "stager.non_blocking_back_to_back.cpu.*");
  EXPECT_EQ(e.expected("utils.gather_dtensor.cpu.default.ws2", "state_dict_utilities")->pattern,
            "utils.gather_dtensor*");
  // 'utils.gather*' spans 'utils.gather' (feature gather) but not 'utils.gather_partial'.
  EXPECT_EQ(e.expected("utils.gather.uneven_rows.cpu.default.ws4", "dtensor")->pattern, "utils.gather*");
  EXPECT_EQ(e.expected("utils.gather_partial.cpu.default.ws2", "dtensor")->pattern, "<undeclared dtensor>");
  // Without an undeclared capability the keys alone decide, as match() does.
  EXPECT_EQ(e.expected("stager.views.cpu.pin1_share0", "")->pattern, "stager.*");
  EXPECT_EQ(e.expected("stager.views.cuda.pin1_share0", "")->pattern, "stager.*");  // more literal characters
  EXPECT_EQ(e.expected("utils.type_check.cuda.default", "")->pattern, "*.cuda.*");
  EXPECT_EQ(e.expected("utils.gather_partial.cpu.default.ws2", "")->pattern, "utils.gather*");
}

TEST(ExpectationsDefault, VerdictsAgainstTheDefault) {
  const Expectations e = Expectations::parse(R"({"schema_version": 2, "expectations": {"*": "pass"}})", "f.json");
  auto verdict = [&](const CaseResult& r, std::string_view undeclared) {
    const auto x = e.expected(r.info.id, undeclared);
    return judge(r, x ? &*x : nullptr);
  };
  EXPECT_EQ(verdict(result("replication.basic.cpu.default.ws2", Outcome::not_supported,
                           "the implementation does not declare the replication capability"),
                    "replication"),
            Verdict::ok);
  EXPECT_EQ(verdict(result("replication.basic.cpu.default.ws2", Outcome::pass), "replication"), Verdict::difference);
  EXPECT_EQ(verdict(result("replication.basic.cpu.default.ws2", Outcome::fail), "replication"), Verdict::regression);
  // A declared capability whose case is not_supported (no device here) is judged by the keys.
  EXPECT_EQ(verdict(result("stager.views.cuda.pin0_share0", Outcome::not_supported, "no CUDA device"), ""),
            Verdict::difference);
  // A file without any key still expects the default.
  const Expectations empty = Expectations::parse(R"({"schema_version": 2, "expectations": {}})", "empty.json");
  EXPECT_FALSE(empty.expected("stager.views.cpu.pin0_share0", "").has_value());
  EXPECT_TRUE(empty.expected("stager.views.cpu.pin1_share0", "pin_memory").has_value());
}

TEST(ExpectationsDefault, WrittenFilesAreCompactAndRoundTrip) {
  std::vector<CaseResult> results = {
      result("stager.views.cpu.pin0_share0", Outcome::pass),
      result("stager.views.cpu.pin1_share0", Outcome::not_supported, "does not declare the pin_memory capability"),
      result("stager.views.cuda.pin0_share0", Outcome::not_supported, "no CUDA device"),
      result("stager.caching.cpu.pin0_share0", Outcome::pass),
      result("stager.caching.cpu.pin0_share1", Outcome::fail, "x: bytes: differ"),
      result("utils.gather_dtensor.cpu.default.ws2", Outcome::fail, "refused"),
  };
  const std::vector<std::string> undeclared = {"", "pin_memory", "", "", "", "state_dict_utilities"};
  const std::string text = expectations_from(results, "acme", undeclared);
  EXPECT_NE(text.find("\"schema_version\": 2"), std::string::npos) << text;
  EXPECT_NE(text.find("\"*\": \"pass\""), std::string::npos) << text;
  EXPECT_EQ(text.find("stager.views.cpu.pin1_share0"), std::string::npos) << "covered by the default:\n" << text;
  EXPECT_EQ(text.find("stager.caching.cpu.pin0_share0"), std::string::npos) << "covered by '*':\n" << text;
  EXPECT_NE(text.find("\"stager.views.cuda.pin0_share0\": \"not_supported\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"stager.caching.cpu.pin0_share1\": \"fail\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"utils.gather_dtensor.cpu.default.ws2\": \"fail\""), std::string::npos) << text;
  const Expectations e = Expectations::parse(text, "written");
  EXPECT_EQ(e.size(), 4U) << text;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const auto x = e.expected(results[i].info.id, undeclared[i]);
    EXPECT_EQ(judge(results[i], x ? &*x : nullptr), Verdict::ok) << results[i].info.id << "\n" << text;
  }
}

// ---- 0.1 keys ------------------------------------------------------------------------------------

std::vector<CaseId> some_ids() {
  std::vector<CaseId> ids;
  for (const char* id :
       {"stager.views.cpu.pin0_share0", "stager.views.cpu.pin1_share1", "stager.views.cuda.pin0_share0",
        "stager.dtype.bfloat16.cpu.pin0_share0", "stager.dtype.bfloat16.cuda.pin0_share0",
        "stager.dtype.float16.cpu.pin0_share0", "stager.dtype.float16.cuda.pin0_share0",
        "stager.limit.memlock_refused.cpu.pin1_share0", "stager.limit.host_memory_exhausted.cpu.pin0_share0",
        "stager.non_blocking_back_to_back.cpu.pin0_share0", "utils.create_cpu_state_dict.cpu.pin0_share1.ws4",
        "utils.create_cpu_state_dict.cpu.pin1_share1.ws4", "utils.create_cpu_state_dict.cpu.pin0_share1.ws2",
        "utils.gather_dtensor.cpu.default.ws2", "utils.gather.uneven_rows.cpu.default.ws4",
        "utils.type_check.cpu.default", "replication.basic.cpu.default.ws2", "replication.basic.cpu.default.ws4"}) {
    ids.push_back(CaseId::parse(id));
  }
  return ids;
}

std::vector<std::string> replacement_of(std::string_view pattern) {
  const auto legacy = legacy_pattern(pattern, some_ids());
  return legacy ? legacy->replacement : std::vector<std::string>{"<current>"};
}

TEST(LegacyKeys, TranslatedToTheCurrentPatternOfTheSameCases) {
  EXPECT_EQ(replacement_of("stager.dtype_bfloat16.*"), std::vector<std::string>{"stager.dtype.bfloat16.*"});
  EXPECT_EQ(replacement_of("stager.dtype_*.cpu.*"), std::vector<std::string>{"stager.dtype.*.cpu.*"});
  EXPECT_EQ(replacement_of("stager.dtype_bfloat16.cpu.*"), std::vector<std::string>{"stager.dtype.bfloat16.cpu.*"});
  EXPECT_EQ(replacement_of("stager.limit_memlock_refused.cpu.pin1_share0"),
            std::vector<std::string>{"stager.limit.memlock_refused.cpu.pin1_share0"});
  EXPECT_EQ(replacement_of("stager.limit_*"), std::vector<std::string>{"stager.limit.*"});
  EXPECT_EQ(replacement_of("utils.create_cpu_state_dict_pin0_share1.cpu.ws4"),
            std::vector<std::string>{"utils.create_cpu_state_dict.cpu.pin0_share1.ws4"});
  EXPECT_EQ(replacement_of("utils.create_cpu_state_dict_pin0_*"),
            std::vector<std::string>{"utils.create_cpu_state_dict.*.pin0_share1*"});
  EXPECT_EQ(replacement_of("utils.type_check.cpu"), std::vector<std::string>{"utils.type_check.cpu.default"});
  EXPECT_EQ(replacement_of("replication.basic.cpu.ws2"), std::vector<std::string>{"replication.basic.cpu.default.ws2"});
  // 'utils.gather_*' also meant the layouts, now 'gather' + a variant: it matches them still.
  EXPECT_EQ(replacement_of("utils.gather_*"), std::vector<std::string>{"utils.gather*"});
  // Current patterns and patterns matching nothing are not translated.
  for (const char* current : {"*", "stager.*", "*.cuda.*", "stager.views.cpu.*", "stager.non_blocking_*.cpu.*",
                              "replication.basic.*", "*.ws2", "no.such.case"}) {
    EXPECT_EQ(replacement_of(current), std::vector<std::string>{"<current>"}) << current;
  }
}

TEST(LegacyKeys, ExpectationsKeepMeaningTheirCasesAndWarn) {
  Expectations e = Expectations::parse(R"({"schema_version": 1, "expectations": {
      "*": "pass",
      "stager.dtype_bfloat16.*": "fail",
      "utils.create_cpu_state_dict_pin0_share1.cpu.ws4": "crash",
      "replication.*": "not_supported"}})",
                                       "vendor.json");
  const std::vector<std::string> warnings = e.accept_legacy_keys(some_ids());
  ASSERT_EQ(warnings.size(), 2U);
  EXPECT_EQ(warnings[0],
            "expectations vendor.json: key 'utils.create_cpu_state_dict_pin0_share1.cpu.ws4' uses a pre-0.2 case ID; "
            "write 'utils.create_cpu_state_dict.cpu.pin0_share1.ws4'");
  EXPECT_EQ(warnings[1],
            "expectations vendor.json: key 'stager.dtype_bfloat16.*' uses a pre-0.2 case ID; write "
            "'stager.dtype.bfloat16.*'");
  EXPECT_EQ(e.match("stager.dtype.bfloat16.cpu.pin0_share0")->pattern, "stager.dtype_bfloat16.*");
  EXPECT_EQ(e.match("stager.dtype.bfloat16.cuda.pin0_share0")->describe(), "fail");
  EXPECT_EQ(e.match("stager.dtype.float16.cpu.pin0_share0")->pattern, "*");
  EXPECT_EQ(e.match("utils.create_cpu_state_dict.cpu.pin0_share1.ws4")->describe(), "crash");
  EXPECT_EQ(e.match("utils.create_cpu_state_dict.cpu.pin0_share1.ws2")->pattern, "*");
  EXPECT_EQ(e.match("replication.basic.cpu.default.ws2")->describe(), "not_supported");
  // A 0.1 exact ID names its feature: it overrides the undeclared-capability default.
  EXPECT_EQ(e.expected("utils.create_cpu_state_dict.cpu.pin0_share1.ws4", "state_dict_utilities")->describe(), "crash");
}

TEST(LegacyKeys, WaiversKeepMeaningTheirCasesAndWarn) {
  Waivers w = Waivers::parse(R"({"schema_version": 1, "waivers": [
      {"cases": "stager.dtype_*.cpu.*", "reason": "r", "link": "https://tracker.example/1"},
      {"cases": "stager.views.*", "reason": "r", "link": "https://tracker.example/2"}]})",
                             "w.json");
  const std::vector<std::string> warnings = w.accept_legacy_keys(some_ids());
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_EQ(warnings[0],
            "waivers w.json: cases 'stager.dtype_*.cpu.*' uses a pre-0.2 case ID; write 'stager.dtype.*.cpu.*'");
  ASSERT_NE(w.match("stager.dtype.float16.cpu.pin0_share0", Outcome::fail), nullptr);
  EXPECT_EQ(w.match("stager.dtype.float16.cpu.pin0_share0", Outcome::fail)->link, "https://tracker.example/1");
  EXPECT_EQ(w.match("stager.dtype.float16.cuda.pin0_share0", Outcome::fail), nullptr);
  EXPECT_EQ(w.match("stager.views.cuda.pin0_share0", Outcome::fail)->link, "https://tracker.example/2");
}

// Every 0.1 ID of the registry translates to the one registered case it spelled.
TEST(LegacyKeys, EveryRegisteredCaseIsFoundByItsLegacyId) {
  const std::vector<CaseId> ids = registered_case_ids();
  ASSERT_GT(ids.size(), 300U);
  std::size_t translated = 0;
  for (const CaseId& id : ids) {
    const auto legacy = legacy_pattern(id.legacy_str(), ids);
    if (id.legacy_str() == id.str()) {
      EXPECT_FALSE(legacy.has_value()) << id.str();
      continue;
    }
    ASSERT_TRUE(legacy.has_value()) << id.legacy_str();
    EXPECT_EQ(legacy->replacement, std::vector<std::string>{id.str()});
    ++translated;
  }
  EXPECT_GT(translated, 100U);
}

}  // namespace
}  // namespace stagekit::conformance
