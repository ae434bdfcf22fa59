// Expectations and waivers as data, and the verdict of a run against them.
//
// Expectations file (JSON, per implementation; `--expect FILE`):
//   {"schema_version": 1, "implementation": "acme-stager",
//    "expectations": {"*": "pass",
//                     "*.cuda.*": "not_supported",
//                     "stager.limit_memlock_refused.*": ["pass", "not_supported"],
//                     "stager.views.cpu.*": {"outcome": "fail", "reason": "storage sharing"}}}
// Keys are case IDs with '*' and '?' wildcards. The most specific key wins: an exact ID first, then
// the key with the most literal (non-wildcard) characters, then the one with fewer wildcards, then
// the alphabetically first. A value is an outcome, a list of acceptable outcomes, or an object with
// "outcome" (one or a list) and "reason" (text the result's reason must contain when the outcome is
// fail, crash or timeout).
//
// Waivers file (`--waivers FILE`):
//   {"schema_version": 1, "waivers": [{"cases": "stager.views.cuda.*", "reason": "why",
//                                      "link": "https://tracker/123", "outcomes": ["fail"]}]}
// Every waiver needs a reason and a link (a URL); "outcomes" defaults to fail, crash and timeout.
// A waived result becomes `waived`; its reason keeps the original outcome and reason.
//
// Verdicts against expectations: ok (the outcome is expected, and the reason when one is given);
// FIX (expected fail/crash/timeout, got pass); REGRESSION (got fail/crash/timeout, worse than
// expected); DIFFERENCE (anything else that differs); MISSING (no key matches the case: an error).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

enum class Verdict { ok, fix, regression, difference, missing };
[[nodiscard]] std::string_view verdict_name(Verdict v) noexcept;  // "ok", "FIX", ...

struct Expectation {
  std::string pattern;
  std::vector<Outcome> outcomes;
  std::string reason_contains;
  [[nodiscard]] std::string describe() const;  // "fail" or "pass|not_supported", plus the reason text
};

class Expectations {
 public:
  // Throws InvalidArgument naming the file and the offending key on any malformed content.
  static Expectations load(const std::filesystem::path& path);
  static Expectations parse(std::string_view json_text, const std::string& origin);
  [[nodiscard]] const Expectation* match(std::string_view case_id) const;
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  std::string origin_;
  std::vector<Expectation> entries_;
};

struct Waiver {
  std::string pattern;
  std::string reason;
  std::string link;
  std::vector<Outcome> outcomes;
};

class Waivers {
 public:
  static Waivers load(const std::filesystem::path& path);
  static Waivers parse(std::string_view json_text, const std::string& origin);
  // The first waiver covering this case and outcome, if any.
  [[nodiscard]] const Waiver* match(std::string_view case_id, Outcome outcome) const;
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }

 private:
  std::string origin_;
  std::vector<Waiver> waivers_;
};

// Turns `result` into `waived` when a waiver covers it; returns the waiver applied.
const Waiver* apply_waiver(CaseResult& result, const Waivers& waivers);

[[nodiscard]] Verdict judge(const CaseResult& result, const Expectation* expected);

// An expectations file that expects exactly the outcomes of `results` (to start a vendor's file).
[[nodiscard]] std::string expectations_from(const std::vector<CaseResult>& results, const std::string& implementation);

}  // namespace stagekit::conformance
