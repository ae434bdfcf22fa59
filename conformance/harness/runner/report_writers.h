// Writers of a conformance run's results: results.json (schema in reports/SCHEMAS.md), JUnit XML and
// a Markdown summary; plus the terminal summary.
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

inline constexpr int kResultsSchemaVersion = 1;

struct RunReport {
  nlohmann::json implementation;  // name, version, capabilities
  nlohmann::json environment;
  nlohmann::json run;             // profile, filter, mode, started, duration_s
  std::vector<CaseResult> results;
  // Per result (same index), optional fields merged into its results.json entry: expected,
  // expected_text, verdict, waiver. Empty or shorter when there are none.
  std::vector<nlohmann::json> annotations;
  nlohmann::json comparison;      // {"expectations", "waivers", "counts": {verdict: n}} or null

  [[nodiscard]] std::string verdict(std::size_t index) const;  // "" without expectations

  [[nodiscard]] std::map<Outcome, std::size_t> counts() const;
};

[[nodiscard]] nlohmann::json capabilities_json(const Capabilities& caps);
[[nodiscard]] nlohmann::ordered_json results_json(const RunReport& report);
[[nodiscard]] std::string junit_xml(const RunReport& report);
[[nodiscard]] std::string summary_markdown(const RunReport& report);
void print_summary(std::ostream& out, const RunReport& report);
// Writes results.json, results.xml and summary.md into `dir` (created if needed).
void write_reports(const std::filesystem::path& dir, const RunReport& report);
[[nodiscard]] std::string xml_escape(std::string_view text);

}  // namespace stagekit::conformance
