// Writers of a conformance run's results: results.json (schema in reports/SCHEMAS.md), JUnit XML and
// a Markdown summary; plus the terminal summary.
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/case.h"

namespace stagekit::conformance {

// 2 (stagekit 0.2): hierarchical case IDs (stagekit/conformance/case_id.h) and per-result id_parts.
inline constexpr int kResultsSchemaVersion = 2;

struct RunReport {
  nlohmann::json implementation;  // name, version, capabilities
  nlohmann::json environment;
  nlohmann::json run;  // profile, filter, mode, started, duration_s
  std::vector<CaseResult> results;
  // Per result (same index), optional fields merged into its results.json entry: expected,
  // expected_text, verdict, waiver. Empty or shorter when there are none.
  std::vector<nlohmann::json> annotations;
  nlohmann::json comparison;  // {"expectations", "waivers", "counts": {verdict: n}} or null

  [[nodiscard]] std::string verdict(std::size_t index) const;  // "" without expectations

  [[nodiscard]] std::map<Outcome, std::size_t> counts() const;
};

[[nodiscard]] nlohmann::json capabilities_json(const Capabilities& caps);
// The inverse of capabilities_json(); nullopt unless `j` is an object with every capability as a bool.
[[nodiscard]] std::optional<Capabilities> capabilities_from_json(const nlohmann::json& j);
// {"area", "feature", "variant", "source", "config", "world_size"} of a case ID (variant: the
// variant segments joined by "."; world_size: 1 for a single-process case); null when `id` is not a
// case ID of the grammar.
[[nodiscard]] nlohmann::ordered_json id_parts_json(std::string_view id);
[[nodiscard]] nlohmann::ordered_json results_json(const RunReport& report);
[[nodiscard]] std::string junit_xml(const RunReport& report);
[[nodiscard]] std::string summary_markdown(const RunReport& report);
void print_summary(std::ostream& out, const RunReport& report);
// Writes results.json, results.xml and summary.md into `dir` (created if needed).
void write_reports(const std::filesystem::path& dir, const RunReport& report);
[[nodiscard]] std::string xml_escape(std::string_view text);

}  // namespace stagekit::conformance
