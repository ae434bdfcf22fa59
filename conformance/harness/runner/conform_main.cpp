// stagekit-conform: runs the conformance cases against an implementation (built in, or a plugin),
// each case isolated in its own process, compares against expectations and waivers, and writes the
// reports.
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "runner/case_filter.h"
#include "runner/expectations.h"
#include "runner/isolated_runner.h"
#include "runner/legacy_ids.h"
#include "runner/mpi_runner.h"
#include "runner/report_writers.h"
#include "stagekit/loader/environment.h"
#include "stagekit/loader/implementation_loader.h"

namespace sc = stagekit::conformance;

namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

std::vector<const sc::Case*> select_cases(const sc::CaseFilter& filter, sc::Profile profile) {
  std::vector<const sc::Case*> selected;
  for (const sc::Case& c : sc::CaseRegistry::instance().cases()) {
    if (!sc::in_profile(c.info.profile, profile)) continue;
    if (filter.matches(c.info.id)) selected.push_back(&c);
  }
  std::sort(selected.begin(), selected.end(),
            [](const sc::Case* a, const sc::Case* b) { return a->info.id < b->info.id; });
  return selected;
}

std::string md_cell(const std::string& text) {
  std::string out;
  for (char c : text) out += c == '|' ? std::string("\\|") : std::string(1, c);
  return out;
}

void print_list(const std::vector<const sc::Case*>& cases, const std::string& format) {
  if (format == "markdown") {
    std::cout << "| case | profile | source | what it checks |\n|---|---|---|---|\n";
    for (const sc::Case* c : cases) {
      std::cout << fmt::format("| `{}` | {} | {} | {} |\n", c->info.id, sc::profile_name(c->info.profile),
                               md_cell(c->info.source), md_cell(c->info.description));
    }
    return;
  }
  for (const sc::Case* c : cases) {
    std::cout << fmt::format("{}  [{}; {}]  {}\n", c->info.id, sc::profile_name(c->info.profile), c->info.source,
                             c->info.description);
  }
  std::cout << cases.size() << " case(s)\n";
}

std::string one_line(std::string text, std::size_t max_chars) {
  std::replace(text.begin(), text.end(), '\n', ' ');
  if (text.size() > max_chars) text = text.substr(0, max_chars) + "...";
  return text;
}

// Per result: the capability its case needs and the implementation does not declare ("" for none,
// and for every case when the capabilities are unknown).
std::vector<std::string> undeclared_capabilities(const std::vector<sc::CaseResult>& results,
                                                 const std::optional<sc::Capabilities>& declared) {
  std::vector<std::string> out;
  for (const sc::CaseResult& r : results) {
    const sc::Case* c = declared ? sc::CaseRegistry::instance().find(r.info.id) : nullptr;
    out.emplace_back(c != nullptr ? sc::undeclared_capability(c->requirements, *declared) : std::string_view());
  }
  return out;
}

// Warns about 0.1 case IDs in --filter: patterns select by the current IDs only.
void warn_legacy_filter(const sc::CaseFilter& filter) {
  const std::vector<sc::CaseId> ids = sc::registered_case_ids();
  for (const auto* patterns : {&filter.includes(), &filter.excludes()}) {
    for (const std::string& p : *patterns) {
      if (auto legacy = sc::legacy_pattern(p, ids)) {
        std::cerr << "stagekit-conform: warning: " << sc::legacy_warning("--filter pattern", *legacy) << "\n";
      }
    }
  }
}

// Applies waivers and expectations to the results; returns the verdict counts.
void compare(sc::RunReport& report, const std::optional<sc::Expectations>& expectations,
             const std::optional<sc::Waivers>& waivers, const std::vector<std::string>& undeclared) {
  report.annotations.assign(report.results.size(), nlohmann::json::object());
  std::map<std::string, int> counts;
  for (std::size_t i = 0; i < report.results.size(); ++i) {
    sc::CaseResult& r = report.results[i];
    nlohmann::json& note = report.annotations[i];
    if (waivers) {
      if (const sc::Waiver* w = sc::apply_waiver(r, *waivers))
        note["waiver"] = {{"reason", w->reason}, {"link", w->link}};
    }
    if (!expectations) continue;
    const std::optional<sc::Expectation> e = expectations->expected(r.info.id, undeclared[i]);
    const sc::Verdict v = sc::judge(r, e ? &*e : nullptr);
    if (e) {
      nlohmann::json expected = nlohmann::json::array();
      for (sc::Outcome o : e->outcomes) expected.push_back(sc::outcome_name(o));
      note["expected"] = expected.size() == 1 ? expected[0] : expected;
      note["expected_text"] = e->describe();
    }
    note["verdict"] = sc::verdict_name(v);
    ++counts[std::string(sc::verdict_name(v))];
  }
  if (expectations || waivers) {
    report.comparison = {{"expectations", expectations ? expectations->origin() : ""},
                         {"waivers", waivers ? waivers->origin() : ""},
                         {"counts", counts}};
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stagekit-conform: run the state-dict stager conformance suite against an implementation and report a "
      "verdict per case (pass, fail, not_supported, waived, crash, timeout).\n"
      "Each case runs in its own forked process with a time limit, so a crash or hang in the implementation "
      "becomes that case's crash or timeout outcome and the run goes on.\n"
      "Case IDs are stable and hierarchical: area.feature[.variant].source.config[.wsN] "
      "(stager.views.cpu.pin0_share0, stager.dtype.bfloat16.cpu.pin0_share0, utils.gather_dtensor.cpu.default.ws2).\n"
      "Exit status: 0 when nothing failed (with --expect: no REGRESSION), 1 when a case failed, crashed or "
      "timed out (with --expect: a REGRESSION, or any difference under --strict-expectations), 2 on bad usage: "
      "an --impl of no known kind, a filter that selects nothing, an unreadable or malformed expectations/waivers "
      "file, or cases missing from the expectations."};
  bool list = false;
  std::string list_format = "text";
  std::string filter_spec;
  std::string profile_name = "strict";
  std::string out_dir;
  const char* env_impl = std::getenv("STAGEKIT_IMPL");
  std::string impl = env_impl != nullptr && *env_impl != '\0' ? env_impl : "reference";
  std::string isolation = "fork";
  unsigned jobs = 1;
  unsigned repeat = 1;
  double timeout_s = 300;
  std::size_t memory_limit_mib = 0;
  std::string expect_file;
  std::string waivers_file;
  std::string write_expectations;
  bool strict_expectations = false;
  bool quiet = false;
  std::string world_kind = stagekit::dist::launched_by_mpi() ? "mpi" : "thread";
  app.add_flag("--list", list, "List the selected cases (ID, profile, source, description) and exit");
  app.add_option("--list-format", list_format, "Format of --list: text or markdown (a table)")
      ->check(CLI::IsMember({"text", "markdown"}));
  app.add_option("--filter", filter_spec,
                 "Glob patterns on case IDs ('*', '?'), separated by ':' or ','; a leading '-' excludes "
                 "(e.g. 'stager.views.*:-*.cuda.*')");
  app.add_option("--profile", profile_name,
                 "upstream: only the cases PyTorch's own tests assert; strict: the whole contract (default); full: "
                 "strict and the cases too heavy for every run (a storage over 4 GiB: some 9 GiB of memory)")
      ->check(CLI::IsMember({"upstream", "strict", "full"}));
  std::string kinds = sc::implementation_kinds_help();
  if (!kinds.empty() && kinds.back() == '\n') kinds.pop_back();
  app.add_option("--impl", impl,
                 "Implementation under test (default: $STAGEKIT_IMPL, else reference), one of:\n" + kinds);
  app.add_option("-j,--jobs", jobs, "Cases run in parallel (isolated runs only)")->check(CLI::Range(1u, 256u));
  app.add_option("--repeat", repeat,
                 "Run every case N times; the worst outcome wins and differing attempts are "
                 "reported as flaky")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--timeout", timeout_s, "Time limit per case attempt, in seconds (default 300)")
      ->check(CLI::PositiveNumber);
  app.add_option("--memory-limit", memory_limit_mib,
                 "Address-space limit per case in MiB (RLIMIT_AS; 0 = none): a leaking implementation fails "
                 "instead of exhausting the machine. Not usable with AddressSanitizer builds");
  app.add_option("--isolation", isolation,
                 "fork: each case in its own child process (default); none: in this process, in order, no "
                 "time limit (for debuggers)")
      ->check(CLI::IsMember({"fork", "none"}));
  app.add_option("--expect", expect_file,
                 "Expectations file (JSON): expected outcome per case ID pattern; the run "
                 "labels differences FIX, REGRESSION or DIFFERENCE");
  app.add_option("--waivers", waivers_file, "Waivers file (JSON): waived cases, each with a reason and a link");
  app.add_flag("--strict-expectations", strict_expectations,
               "With --expect, exit 1 on any difference (FIX, DIFFERENCE), not only on a REGRESSION");
  app.add_option("--write-expectations", write_expectations,
                 "Write an expectations file expecting exactly this run's outcomes (a starting point)");
  app.add_option("--out", out_dir, "Directory for results.json, results.xml (JUnit) and summary.md");
  app.add_flag("-q,--quiet", quiet, "Print only the summary, not a line per case");
  app.add_option("--world", world_kind,
                 "thread: multi-rank cases run their ranks as threads of each case's process (default); mpi: this "
                 "process is one rank of the MPI world (default under mpirun/srun) and only the cases needing exactly "
                 "that many ranks run, in process, with rank 0 writing the reports")
      ->check(CLI::IsMember({"thread", "mpi"}));
  CLI11_PARSE(app, argc, argv);

  const sc::Profile profile = sc::profile_named(profile_name).value_or(sc::Profile::strict);
  const sc::CaseFilter filter(filter_spec);
  warn_legacy_filter(filter);
  auto selected = select_cases(filter, profile);
  std::unique_ptr<stagekit::dist::Communicator> world;
  if (world_kind == "mpi") {
    try {
      world = stagekit::dist::mpi_world();
    } catch (const std::exception& e) {
      std::cerr << "stagekit-conform: --world mpi: " << e.what() << "\n";
      return kExitUsage;
    }
    world->set_timeout(std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000)));
    selected = sc::cases_for_world(selected, world->size());
    if (world->rank() != 0) quiet = true;
  }
  if (selected.empty()) {
    std::cerr << "stagekit-conform: no case matches filter '" << filter_spec << "' in profile " << profile_name
              << (world ? fmt::format(" for a world of {} ranks", world->size()) : std::string()) << "\n";
    return kExitUsage;
  }
  if (list) {
    print_list(selected, list_format);
    return kExitOk;
  }

  std::optional<sc::Expectations> expectations;
  std::optional<sc::Waivers> waivers;
  try {
    std::vector<std::string> warnings;
    if (!expect_file.empty() || !waivers_file.empty()) {
      const std::vector<sc::CaseId> ids = sc::registered_case_ids();
      if (!expect_file.empty()) {
        expectations = sc::Expectations::load(expect_file);
        warnings = expectations->accept_legacy_keys(ids);
      }
      if (!waivers_file.empty()) {
        waivers = sc::Waivers::load(waivers_file);
        for (std::string& w : waivers->accept_legacy_keys(ids)) warnings.push_back(std::move(w));
      }
    }
    for (const std::string& w : warnings) std::cerr << "stagekit-conform: warning: " << w << "\n";
  } catch (const std::exception& e) {
    std::cerr << "stagekit-conform: " << e.what() << "\n";
    return kExitUsage;
  }

  sc::RunOptions options;
  options.isolate = isolation == "fork";
  options.jobs = jobs;
  options.repeat = repeat;
  options.timeout = std::chrono::milliseconds(static_cast<long long>(timeout_s * 1000));
  options.memory_limit_bytes = memory_limit_mib << 20;
  const auto start = std::chrono::steady_clock::now();
  if (!quiet) {
    options.on_attempt = [&](const sc::CaseResult& r, std::size_t done, std::size_t total) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::string line = fmt::format("[{:>4}/{}] {:<13} {:>7.3f}s  {:>6.1f}s  {}", done, total,
                                     sc::outcome_name(r.outcome), r.seconds, elapsed, r.info.id);
      if (r.outcome != sc::Outcome::pass) line += "  -- " + one_line(r.reason, 300);
      std::cout << line << std::endl;
    };
  }

  if (world) options.isolate = false;  // fork and MPI do not mix
  const sc::ImplementationSource source = sc::load_implementation(impl);
  if (source.kind.empty()) {
    std::cerr << "stagekit-conform: --impl: " << source.refusal << "\n";
    return kExitUsage;
  }
  const sc::ImplementationDescription description = sc::describe_implementation(source, options);
  if (!description.error.empty()) std::cerr << "stagekit-conform: " << description.error << "\n";
  if (description.error.empty()) {
    options.declared = sc::capabilities_from_json(description.implementation.value("capabilities", nlohmann::json()));
  }
  // An implementation that cannot be made here still runs its cases: each is not_supported.
  const std::string refusal = description.unsupported ? std::string() : description.error;

  sc::RunReport report;
  report.implementation = description.implementation;
  report.run = {{"profile", profile_name},
                {"filter", filter_spec},
                {"started", utc_now()},
                {"isolation", options.isolate ? "fork" : "in-process"},
                {"jobs", options.isolate ? jobs : 1U},
                {"repeat", repeat},
                {"timeout_s", timeout_s},
                {"argv", std::vector<std::string>(argv, argv + argc)}};
  if (world) {
    report.run["world"] = {{"backend", world->backend()}, {"size", world->size()}};
    report.results = sc::run_cases_on_world(selected, source, *world, options, refusal);
  } else {
    report.run["world"] = {{"backend", "thread"}};
    report.results = sc::run_cases(selected, source, options, refusal);
  }
  report.run["duration_s"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // After the run: describing CUDA initialises it, and a CUDA context must not be forked.
  report.environment = sc::describe_environment();

  // Undeclared capabilities are known only when the implementation could be described.
  const std::optional<sc::Capabilities> declared =
      description.error.empty()
          ? sc::capabilities_from_json(report.implementation.value("capabilities", nlohmann::json()))
          : std::nullopt;
  const std::vector<std::string> undeclared = undeclared_capabilities(report.results, declared);
  compare(report, expectations, waivers, undeclared);
  const bool writer = !world || world->rank() == 0;  // under MPI, rank 0 speaks for every rank
  if (writer) sc::print_summary(std::cout, report);
  if (writer && !out_dir.empty()) {
    sc::write_reports(out_dir, report);
    std::cout << "reports written to " << std::filesystem::absolute(out_dir).string() << "\n";
  }
  if (writer && !write_expectations.empty()) {
    std::ofstream out(write_expectations);
    out << sc::expectations_from(report.results, report.implementation.value("name", impl), undeclared);
    if (!out) {
      std::cerr << "stagekit-conform: cannot write " << write_expectations << "\n";
      return kExitUsage;
    }
    std::cout << "expectations written to " << write_expectations << "\n";
  }

  if (expectations) {
    const auto& counts = report.comparison["counts"];
    auto count = [&](const char* v) { return counts.contains(v) ? counts[v].get<int>() : 0; };
    if (count("MISSING") > 0) {
      std::cerr << "stagekit-conform: " << count("MISSING") << " case(s) have no expectation in " << expect_file
                << " (add them, or a '*' pattern)\n";
      return kExitUsage;
    }
    if (count("REGRESSION") > 0) return kExitFailed;
    if (strict_expectations && count("FIX") + count("DIFFERENCE") > 0) return kExitFailed;
    return kExitOk;
  }
  const auto counts = report.counts();
  const bool bad = counts.at(sc::Outcome::fail) + counts.at(sc::Outcome::crash) + counts.at(sc::Outcome::timeout) > 0;
  return bad ? kExitFailed : kExitOk;
}
