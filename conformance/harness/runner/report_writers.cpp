#include "report_writers.h"

#include <algorithm>
#include <fstream>

#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit::conformance {
namespace {

constexpr Outcome kOutcomes[] = {Outcome::pass,   Outcome::fail,  Outcome::not_supported,
                                 Outcome::waived, Outcome::crash, Outcome::timeout};

std::string md_cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|')
      out += "\\|";
    else if (c == '\n')
      out += "<br>";
    else
      out += c;
  }
  return out;
}

// Not-supported reasons grouped: reason -> number of cases.
std::map<std::string, std::size_t> not_supported_reasons(const RunReport& r) {
  std::map<std::string, std::size_t> reasons;
  for (const CaseResult& c : r.results) {
    if (c.outcome == Outcome::not_supported) ++reasons[c.reason];
  }
  return reasons;
}

void write_file(const std::filesystem::path& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw IoError("cannot write " + path.string());
}

}  // namespace

std::string RunReport::verdict(std::size_t index) const {
  if (index >= annotations.size() || !annotations[index].is_object()) return {};
  return annotations[index].value("verdict", "");
}

std::map<Outcome, std::size_t> RunReport::counts() const {
  std::map<Outcome, std::size_t> c;
  for (Outcome o : kOutcomes) c[o] = 0;
  for (const CaseResult& r : results) ++c[r.outcome];
  return c;
}

nlohmann::json capabilities_json(const Capabilities& caps) {
  return {{"pin_memory", caps.pin_memory},
          {"share_memory", caps.share_memory},
          {"cuda_sources", caps.cuda_sources},
          {"non_blocking", caps.non_blocking},
          {"cache_stats", caps.cache_stats},
          {"dtensor", caps.dtensor},
          {"sharded_tensor", caps.sharded_tensor},
          {"replication", caps.replication},
          {"state_dict_utilities", caps.state_dict_utilities},
          {"async_staging", caps.async_staging}};
}

std::optional<Capabilities> capabilities_from_json(const nlohmann::json& j) {
  if (!j.is_object()) return std::nullopt;
  Capabilities caps;
  const std::pair<const char*, bool Capabilities::*> fields[] = {
      {"pin_memory", &Capabilities::pin_memory},
      {"share_memory", &Capabilities::share_memory},
      {"cuda_sources", &Capabilities::cuda_sources},
      {"non_blocking", &Capabilities::non_blocking},
      {"cache_stats", &Capabilities::cache_stats},
      {"dtensor", &Capabilities::dtensor},
      {"sharded_tensor", &Capabilities::sharded_tensor},
      {"replication", &Capabilities::replication},
      {"state_dict_utilities", &Capabilities::state_dict_utilities}};
  for (const auto& [key, member] : fields) {
    if (!j.contains(key) || !j[key].is_boolean()) return std::nullopt;
    caps.*member = j[key].get<bool>();
  }
  // Added in 0.2 after the others: results written before it lack the key.
  if (j.contains("async_staging")) {
    if (!j["async_staging"].is_boolean()) return std::nullopt;
    caps.async_staging = j["async_staging"].get<bool>();
  }
  return caps;
}

nlohmann::ordered_json id_parts_json(std::string_view id) {
  const auto parts = CaseId::try_parse(id);
  if (!parts) return nullptr;
  nlohmann::ordered_json j;
  j["area"] = parts->area;
  j["feature"] = parts->feature;
  j["variant"] = parts->variant();
  j["source"] = parts->source;
  j["config"] = parts->config;
  j["world_size"] = std::max(parts->world_size, 1);
  return j;
}

nlohmann::ordered_json results_json(const RunReport& report) {
  nlohmann::ordered_json j;
  j["schema_version"] = kResultsSchemaVersion;
  j["suite"] = "stagekit-conformance";
  j["implementation"] = report.implementation;
  j["environment"] = report.environment;
  j["run"] = report.run;
  nlohmann::ordered_json counts = nlohmann::ordered_json::object();
  for (const auto& [o, n] : report.counts()) counts[std::string(outcome_name(o))] = n;
  j["counts"] = counts;
  nlohmann::ordered_json results = nlohmann::ordered_json::array();
  for (const CaseResult& r : report.results) {
    nlohmann::ordered_json item{
        {"id", r.info.id},         {"outcome", outcome_name(r.outcome)},      {"reason", r.reason},
        {"source", r.info.source}, {"profile", profile_name(r.info.profile)}, {"description", r.info.description},
        {"seconds", r.seconds}};
    if (nlohmann::ordered_json parts = id_parts_json(r.info.id); !parts.is_null()) item["id_parts"] = std::move(parts);
    if (!r.output.empty()) item["output"] = r.output;
    if (!r.attempts.empty()) {
      item["attempts"] = nlohmann::ordered_json::array();
      for (Outcome o : r.attempts) item["attempts"].push_back(outcome_name(o));
    }
    const std::size_t index = results.size();
    if (index < report.annotations.size() && report.annotations[index].is_object()) {
      for (const auto& [k, v] : report.annotations[index].items()) item[k] = v;
    }
    results.push_back(std::move(item));
  }
  if (!report.comparison.is_null()) j["comparison"] = report.comparison;
  j["results"] = results;
  return j;
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 && c != '\n' && c != '\t') {
          out += fmt::format("\\x{:02x}", static_cast<unsigned>(static_cast<unsigned char>(c)));  // not legal in XML
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string junit_xml(const RunReport& report) {
  const auto counts = report.counts();
  double total = 0;
  for (const auto& r : report.results) total += r.seconds;
  const std::string impl = report.implementation.value("name", "unknown");
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x += fmt::format(
      "<testsuites name=\"stagekit-conform\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" "
      "time=\"{:.3f}\">\n",
      report.results.size(), counts.at(Outcome::fail), counts.at(Outcome::crash) + counts.at(Outcome::timeout),
      counts.at(Outcome::not_supported) + counts.at(Outcome::waived), total);
  x += fmt::format(
      "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{:.3f}\">\n",
      xml_escape(impl), report.results.size(), counts.at(Outcome::fail),
      counts.at(Outcome::crash) + counts.at(Outcome::timeout),
      counts.at(Outcome::not_supported) + counts.at(Outcome::waived), total);
  for (const CaseResult& r : report.results) {
    const auto dot = r.info.id.rfind('.');
    const std::string classname = dot == std::string::npos ? impl : r.info.id.substr(0, dot);
    const std::string name = dot == std::string::npos ? r.info.id : r.info.id.substr(dot + 1);
    x += fmt::format("    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3f}\">\n", xml_escape(classname),
                     xml_escape(name), r.seconds);
    x += fmt::format(
        "      <properties><property name=\"case_id\" value=\"{}\"/><property name=\"outcome\" value=\"{}\"/>"
        "<property name=\"profile\" value=\"{}\"/><property name=\"source\" value=\"{}\"/></properties>\n",
        xml_escape(r.info.id), outcome_name(r.outcome), profile_name(r.info.profile), xml_escape(r.info.source));
    const std::string verdict = report.verdict(static_cast<std::size_t>(&r - report.results.data()));
    if (verdict == "ok" && is_bad(r.outcome)) {
      x += fmt::format("      <skipped message=\"expected {}: {}\"/>\n    </testcase>\n", outcome_name(r.outcome),
                       xml_escape(r.reason));
      continue;
    }
    switch (r.outcome) {
      case Outcome::pass: break;
      case Outcome::fail:
        x += fmt::format("      <failure message=\"{}\" type=\"fail\"/>\n", xml_escape(r.reason));
        break;
      case Outcome::crash:
      case Outcome::timeout:
        x += fmt::format("      <error message=\"{}\" type=\"{}\"/>\n", xml_escape(r.reason), outcome_name(r.outcome));
        break;
      case Outcome::not_supported:
      case Outcome::waived:
        x += fmt::format("      <skipped message=\"{}: {}\"/>\n", outcome_name(r.outcome), xml_escape(r.reason));
        break;
    }
    x += "    </testcase>\n";
  }
  x += "  </testsuite>\n</testsuites>\n";
  return x;
}

std::string summary_markdown(const RunReport& report) {
  const auto counts = report.counts();
  std::string m = "# stagekit conformance results\n\n";
  m += fmt::format("- implementation: **{}** {}\n", report.implementation.value("name", "?"),
                   report.implementation.value("version", ""));
  m += fmt::format("- profile: `{}`, filter: `{}`\n", report.run.value("profile", "?"), report.run.value("filter", ""));
  const auto& env = report.environment;
  if (env.contains("git")) m += fmt::format("- git: `{}`\n", env["git"].value("sha", "unknown"));
  m += fmt::format("- CUDA: {}\n", env.contains("cuda") && env["cuda"].is_string()
                                       ? env["cuda"].get<std::string>() + " (" + env.value("cuda_reason", "") + ")"
                                       : std::string("available"));
  if (env.contains("host")) {
    m += fmt::format("- host: {} ({} CPUs)\n", env["host"].value("cpu_model", "?"), env["host"].value("cpu_count", 0U));
  }
  m += "\n| outcome | cases |\n|---|---:|\n";
  for (const auto& [o, n] : counts) m += fmt::format("| {} | {} |\n", outcome_name(o), n);
  m += fmt::format("| **total** | **{}** |\n", report.results.size());

  if (!report.comparison.is_null()) {
    m += fmt::format("\n## Against expectations (`{}`)\n\n", report.comparison.value("expectations", ""));
    m += "| verdict | cases |\n|---|---:|\n";
    for (const auto& [v, n] : report.comparison["counts"].items()) m += fmt::format("| {} | {} |\n", v, n.get<int>());
    bool differs = false;
    for (std::size_t i = 0; i < report.results.size(); ++i) {
      const std::string verdict = report.verdict(i);
      if (verdict.empty() || verdict == "ok") continue;
      if (!differs) m += "\n| case | verdict | expected | outcome | reason |\n|---|---|---|---|---|\n";
      differs = true;
      m += fmt::format("| `{}` | **{}** | {} | {} | {} |\n", report.results[i].info.id, verdict,
                       md_cell(report.annotations[i].value("expected_text", "")),
                       outcome_name(report.results[i].outcome), md_cell(report.results[i].reason));
    }
  }

  m += "\n## Failures\n\n";
  bool any = false;
  for (const CaseResult& r : report.results) {
    if (!is_bad(r.outcome)) continue;
    if (!any) m += "| case | outcome | reason |\n|---|---|---|\n";
    any = true;
    m += fmt::format("| `{}` | {} | {} |\n", r.info.id, outcome_name(r.outcome), md_cell(r.reason));
  }
  if (!any) m += "None.\n";

  m += "\n## Not supported here\n\n";
  const auto reasons = not_supported_reasons(report);
  if (reasons.empty())
    m += "None.\n";
  else
    m += "| cases | reason |\n|---:|---|\n";
  for (const auto& [reason, n] : reasons) m += fmt::format("| {} | {} |\n", n, md_cell(reason));

  m += "\n## Every case\n\n| case | profile | source | outcome | description |\n|---|---|---|---|---|\n";
  for (const CaseResult& r : report.results) {
    m += fmt::format("| `{}` | {} | {} | {} | {} |\n", r.info.id, profile_name(r.info.profile), md_cell(r.info.source),
                     outcome_name(r.outcome), md_cell(r.info.description));
  }
  return m;
}

void print_summary(std::ostream& out, const RunReport& report) {
  const auto counts = report.counts();
  out << "\n# stagekit conformance: " << report.implementation.value("name", "?") << ", profile "
      << report.run.value("profile", "?") << "\n";
  out << fmt::format("# {:<14} {:>6}\n", "outcome", "cases");
  for (const auto& [o, n] : counts) out << fmt::format("  {:<14} {:>6}\n", outcome_name(o), n);
  out << fmt::format("  {:<14} {:>6}\n", "total", report.results.size());
  bool header = false;
  for (const CaseResult& r : report.results) {
    if (!is_bad(r.outcome)) continue;
    if (!header) out << "# failures\n";
    header = true;
    out << fmt::format("  {} {}: {}\n", outcome_name(r.outcome), r.info.id, r.reason);
  }
  const auto reasons = not_supported_reasons(report);
  if (!reasons.empty()) out << "# not supported here\n";
  for (const auto& [reason, n] : reasons) out << fmt::format("  {:>4} case(s): {}\n", n, reason);
  if (report.comparison.is_null()) return;
  out << "# against expectations " << report.comparison.value("expectations", "") << "\n";
  for (const auto& [v, n] : report.comparison["counts"].items())
    out << fmt::format("  {:<14} {:>6}\n", v, n.get<int>());
  for (std::size_t i = 0; i < report.results.size(); ++i) {
    const std::string verdict = report.verdict(i);
    if (verdict.empty() || verdict == "ok") continue;
    out << fmt::format("  {} {}: expected {}, got {}: {}\n", verdict, report.results[i].info.id,
                       report.annotations[i].value("expected_text", "nothing"), outcome_name(report.results[i].outcome),
                       report.results[i].reason);
  }
}

void write_reports(const std::filesystem::path& dir, const RunReport& report) {
  std::filesystem::create_directories(dir);
  write_file(dir / "results.json", results_json(report).dump(2) + "\n");
  write_file(dir / "results.xml", junit_xml(report));
  write_file(dir / "summary.md", summary_markdown(report));
}

}  // namespace stagekit::conformance
