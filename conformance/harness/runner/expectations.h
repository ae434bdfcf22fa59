// Expectations and waivers as data, and the verdict of a run against them.
//
// Expectations file (JSON, per implementation; `--expect FILE`):
//   {"schema_version": 2, "implementation": "acme-stager",
//    "expectations": {"*": "pass",
//                     "stager.limit.memlock_refused.*": ["pass", "not_supported"],
//                     "stager.views.cpu.*": {"outcome": "fail", "reason": "storage sharing"}}}
// Keys are case IDs (stagekit/conformance/case_id.h) with '*' and '?' wildcards. The most specific
// key wins: an exact ID first, then the key with the most literal (non-wildcard) characters, then
// the one with fewer wildcards, then the alphabetically first. A value is an outcome, a list of
// acceptable outcomes, or an object with "outcome" (one or a list) and "reason" (text the result's
// reason must contain when the outcome is fail, crash or timeout).
//
// Undeclared capabilities: a case needing a capability the implementation does not declare
// (undeclared_capability() of stagekit/conformance/case.h) is expected not_supported without a
// key, unless a key that names the case's feature matches it: an exact ID, or a pattern whose text
// before its first wildcard spans the case's `area.feature` (`utils.gather_dtensor.*`,
// `stager.non_blocking_back_to_back.cpu.*`). Broad keys (`*`, `stager.*`, `*.cuda.*`) do not
// override it. When the implementation could not be described (a refused plugin), no capability is
// known and only the keys apply.
// A missing device is not an undeclared capability: for an implementation that declares
// cuda_sources, the not_supported of a `*.cuda.*` case on a machine without a usable CUDA device is
// a fact of that machine, and the file says so (`"*.cuda.*": ["pass", "not_supported"]`, or a file
// per machine); likewise `stager.limit.memlock_refused.*`, which only runs where no GPU is present.
//
// Versions: schema_version 2 (stagekit 0.2) is written by --write-expectations; 1 is read the
// same way. Keys written for stagekit 0.1 IDs are read until 0.3 (runner/legacy_ids.h): see
// accept_legacy_keys().
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

inline constexpr int kExpectationsSchemaVersion = 2;

struct Expectation {
  std::string pattern;  // the key; for the undeclared-capability default, "<undeclared CAPABILITY>"
  std::vector<Outcome> outcomes;
  std::string reason_contains;
  bool legacy = false;                         // a 0.1 key: matches CaseId::legacy_str() of a case too
  [[nodiscard]] std::string describe() const;  // "fail" or "pass|not_supported", plus the reason text
};

class Expectations {
 public:
  // Throws InvalidArgument naming the file and the offending key on any malformed content.
  static Expectations load(const std::filesystem::path& path);
  static Expectations parse(std::string_view json_text, const std::string& origin);
  // The most specific key matching `case_id`, or null.
  [[nodiscard]] const Expectation* match(std::string_view case_id) const;
  // What `case_id` is expected to give: as match(), but when the case needs `undeclared_capability`
  // (non-empty) only a key naming its feature counts, and without one it is not_supported.
  [[nodiscard]] std::optional<Expectation> expected(std::string_view case_id,
                                                    std::string_view undeclared_capability) const;
  // Marks the keys that name cases of `ids` by their 0.1 spelling only (they keep meaning those
  // cases) and returns one warning per key, naming what to write instead.
  std::vector<std::string> accept_legacy_keys(const std::vector<CaseId>& ids);
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
  bool legacy = false;  // a 0.1 pattern: matches CaseId::legacy_str() of a case too
};

class Waivers {
 public:
  static Waivers load(const std::filesystem::path& path);
  static Waivers parse(std::string_view json_text, const std::string& origin);
  // The first waiver covering this case and outcome, if any.
  [[nodiscard]] const Waiver* match(std::string_view case_id, Outcome outcome) const;
  // As Expectations::accept_legacy_keys().
  std::vector<std::string> accept_legacy_keys(const std::vector<CaseId>& ids);
  [[nodiscard]] const std::string& origin() const noexcept { return origin_; }

 private:
  std::string origin_;
  std::vector<Waiver> waivers_;
};

// Turns `result` into `waived` when a waiver covers it; returns the waiver applied.
const Waiver* apply_waiver(CaseResult& result, const Waivers& waivers);

[[nodiscard]] Verdict judge(const CaseResult& result, const Expectation* expected);

// An expectations file (schema_version 2) that expects exactly the outcomes of `results`, to start a
// vendor's file: no key for a not_supported case whose capability is undeclared (`undeclared[i]`,
// the undeclared capability of results[i]'s case, or empty; an empty vector: none), a "*" key for
// the most common remaining outcome, and the exact ID of every other case.
[[nodiscard]] std::string expectations_from(const std::vector<CaseResult>& results, const std::string& implementation,
                                            const std::vector<std::string>& undeclared = {});

}  // namespace stagekit::conformance
