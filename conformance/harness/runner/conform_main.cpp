// stagekit-conform: runs the conformance cases against an implementation and writes the reports.
#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "../../adapter/reference_implementation.h"
#include "case_filter.h"
#include "environment.h"
#include "report_writers.h"

namespace sc = stagekit::conformance;

namespace {

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::vector<const sc::Case*> select_cases(const sc::CaseFilter& filter, sc::Profile profile) {
  std::vector<const sc::Case*> selected;
  for (const sc::Case& c : sc::CaseRegistry::instance().cases()) {
    if (profile == sc::Profile::upstream && c.info.profile != sc::Profile::upstream) continue;
    if (filter.matches(c.info.id)) selected.push_back(&c);
  }
  std::sort(selected.begin(), selected.end(), [](const sc::Case* a, const sc::Case* b) { return a->info.id < b->info.id; });
  return selected;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stagekit-conform: run the state-dict stager conformance suite against an implementation and report a "
      "verdict per case (pass, fail, not_supported, waived, crash, timeout).\n"
      "Case IDs are stable and dotted (stager.views.cpu.pin1_share0). Exit status: 0 when no case failed, "
      "1 when a case failed, crashed or timed out, 2 on bad usage (including a filter that selects nothing)."};
  bool list = false;
  std::string filter_spec;
  std::string profile_name = "strict";
  std::string out_dir;
  std::string impl = "reference";
  bool quiet = false;
  app.add_flag("--list", list, "List the selected cases (ID, profile, source, description) and exit");
  app.add_option("--filter", filter_spec,
                 "Glob patterns on case IDs ('*', '?'), separated by ':' or ','; a leading '-' excludes "
                 "(e.g. 'stager.views.*:-*.cuda.*')");
  app.add_option("--profile", profile_name,
                 "upstream: only the cases PyTorch's own tests assert; strict: every case (default)")
      ->check(CLI::IsMember({"upstream", "strict"}));
  app.add_option("--out", out_dir, "Directory for results.json, results.xml (JUnit) and summary.md");
  app.add_option("--impl", impl, "Implementation under test; only the built-in 'reference' for now");
  app.add_flag("-q,--quiet", quiet, "Print only the summary, not a line per case");
  CLI11_PARSE(app, argc, argv);

  if (impl != "reference") {
    std::cerr << "stagekit-conform: unknown implementation '" << impl << "' (only 'reference' is built in)\n";
    return 2;
  }
  const sc::Profile profile = profile_name == "upstream" ? sc::Profile::upstream : sc::Profile::strict;
  const sc::CaseFilter filter(filter_spec);
  const auto selected = select_cases(filter, profile);
  if (selected.empty()) {
    std::cerr << "stagekit-conform: no case matches filter '" << filter_spec << "' in profile " << profile_name << "\n";
    return 2;
  }
  if (list) {
    for (const sc::Case* c : selected) {
      std::cout << fmt::format("{}  [{}; {}]  {}\n", c->info.id, sc::profile_name(c->info.profile), c->info.source,
                               c->info.description);
    }
    std::cout << selected.size() << " case(s)\n";
    return 0;
  }

  auto implementation = sc::make_reference_implementation();
  sc::RunReport report;
  report.implementation = {{"name", implementation->name()},
                           {"version", implementation->version()},
                           {"capabilities", sc::capabilities_json(implementation->capabilities())}};
  report.environment = sc::describe_environment();
  report.run = {{"profile", profile_name}, {"filter", filter_spec}, {"started", utc_now()}, {"isolation", "in-process"}};

  const auto start = std::chrono::steady_clock::now();
  std::size_t index = 0;
  for (const sc::Case* c : selected) {
    ++index;
    sc::CaseResult r = sc::run_case(*c, *implementation);
    if (!quiet) {
      std::cout << fmt::format("[{:>4}/{}] {:<13} {:>7.3f}s  {}", index, selected.size(), sc::outcome_name(r.outcome),
                               r.seconds, r.info.id);
      if (r.outcome != sc::Outcome::pass) std::cout << "  -- " << r.reason;
      std::cout << std::endl;
    }
    report.results.push_back(std::move(r));
  }
  report.run["duration_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  sc::print_summary(std::cout, report);
  if (!out_dir.empty()) {
    sc::write_reports(out_dir, report);
    std::cout << "reports written to " << std::filesystem::absolute(out_dir).string() << "\n";
  }
  const auto counts = report.counts();
  const bool bad = counts.at(sc::Outcome::fail) + counts.at(sc::Outcome::crash) + counts.at(sc::Outcome::timeout) > 0;
  return bad ? 1 : 0;
}
