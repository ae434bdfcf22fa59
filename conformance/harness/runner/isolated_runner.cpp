#include "runner/isolated_runner.h"

#include <algorithm>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "runner/report_writers.h"
#include "stagekit/testing/child_process.h"

namespace stagekit::conformance {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kReleasedMarker = "released";

using testing::signal_text;
using testing::write_all;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// The last non-empty lines of `output`, at most `max_chars` characters, on one line.
std::string output_excerpt(const std::string& output, std::size_t max_chars = 400) {
  std::string text = output;
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text.size() > max_chars) text = "..." + text.substr(text.size() - max_chars);
  std::replace(text.begin(), text.end(), '\n', '|');
  return text;
}

nlohmann::json result_to_json(const CaseResult& r) {
  return {{"outcome", outcome_name(r.outcome)}, {"reason", r.reason}, {"seconds", r.seconds}};
}

CaseResult make_result(const Case& c, Outcome outcome, std::string reason, double seconds) {
  CaseResult r;
  r.info = c.info;
  r.outcome = outcome;
  r.reason = std::move(reason);
  r.seconds = seconds;
  return r;
}

// The implementation's factory as a case outcome when it throws.
CaseResult factory_failure(const Case& c, const std::exception& e, double seconds) {
  if (const auto* err = dynamic_cast<const Error*>(&e); err != nullptr && err->code() == ErrorCode::unsupported) {
    return make_result(c, Outcome::not_supported, fmt::format("the implementation cannot be made here: {}", e.what()),
                       seconds);
  }
  return make_result(c, Outcome::fail, fmt::format("the implementation could not be made: {}", e.what()), seconds);
}

// Runs one case in this process: make the implementation, run the case, release it.
CaseResult run_in_process(const Case& c, const ImplementationSource& source) {
  const auto start = Clock::now();
  std::unique_ptr<Implementation> impl;
  try {
    impl = source.factory();
  } catch (const std::exception& e) {
    return factory_failure(c, e, seconds_since(start));
  }
  if (!impl) return make_result(c, Outcome::fail, "the implementation factory returned nothing", seconds_since(start));
  return run_case(c, *impl);
}

// ---- forked children ------------------------------------------------------------------------------

testing::ChildOptions child_options(const RunOptions& options, const ImplementationSource& source) {
  testing::ChildOptions o;
  o.fork_server = source.fork_server;
  o.time_limit = options.timeout;
  o.memory_limit_bytes = options.memory_limit_bytes;
  o.capture_output = true;
  o.output_tail_bytes = options.output_tail_bytes;
  return o;
}

// Turns what a case's child left behind into the case's result.
CaseResult interpret(const Case& c, const testing::ChildExit& r, const RunOptions& options) {
  std::string line;
  bool released = false;
  {
    const std::size_t nl = r.result.find('\n');
    line = r.result.substr(0, nl);
    released = nl != std::string::npos && r.result.substr(nl + 1) == kReleasedMarker;
  }
  std::optional<CaseResult> reported;
  if (!line.empty()) {
    try {
      const auto j = nlohmann::json::parse(line);
      const auto outcome = parse_outcome(j.at("outcome").get<std::string>());
      if (outcome)
        reported = make_result(c, *outcome, j.at("reason").get<std::string>(), j.at("seconds").get<double>());
    } catch (const std::exception&) {
      reported.reset();
    }
  }
  auto with_output = [&](CaseResult result, const std::string& what) {
    result.reason = what;
    if (!r.output.empty()) result.reason += fmt::format("; last output: {}", output_excerpt(r.output));
    result.output = r.output;
    return result;
  };
  if (r.timed_out) {
    const double limit = std::chrono::duration<double>(options.timeout).count();
    std::string what = reported ? fmt::format(
                                      "the case finished ({}) but its process did not exit within {:g} s "
                                      "(hung while releasing the implementation); killed",
                                      outcome_name(reported->outcome), limit)
                                : fmt::format("did not finish within {:g} s; killed", limit);
    return with_output(make_result(c, Outcome::timeout, {}, r.seconds), what);
  }
  if (!r.started) return with_output(make_result(c, Outcome::crash, {}, r.seconds), "could not start the case");
  if (r.signal() != 0) {
    const std::string sig = signal_text(r.signal());
    std::string what = reported && !released
                           ? fmt::format(
                                 "the case finished ({}) but its process then died of {} while releasing "
                                 "the implementation",
                                 outcome_name(reported->outcome), sig)
                           : fmt::format("died of {}", sig);
    return with_output(make_result(c, Outcome::crash, {}, r.seconds), what);
  }
  const int code = r.exit_code();
  if (!reported) {
    return with_output(make_result(c, Outcome::crash, {}, r.seconds),
                       fmt::format("exited with status {} without reporting a result", code));
  }
  if (!released || code != 0) {
    return with_output(make_result(c, Outcome::crash, {}, r.seconds),
                       fmt::format("the case finished ({}) but releasing the implementation ended the process "
                                   "with status {}",
                                   outcome_name(reported->outcome), code));
  }
  return *reported;
}

}  // namespace

CaseResult combine_attempts(std::vector<CaseResult> attempts) {
  if (attempts.empty()) throw InternalError("combine_attempts: no attempts");
  if (attempts.size() == 1) return std::move(attempts.front());
  std::size_t worst = 0;
  std::map<Outcome, int> tally;
  std::vector<Outcome> outcomes;
  double seconds = 0.0;
  for (std::size_t i = 0; i < attempts.size(); ++i) {
    outcomes.push_back(attempts[i].outcome);
    ++tally[attempts[i].outcome];
    seconds += attempts[i].seconds;
    if (severity(attempts[i].outcome) > severity(attempts[worst].outcome)) worst = i;
  }
  CaseResult result = std::move(attempts[worst]);
  result.attempts = std::move(outcomes);
  result.seconds = seconds / static_cast<double>(result.attempts.size());
  if (tally.size() > 1) {
    std::string counts;
    for (const auto& [o, n] : tally) counts += fmt::format("{}{} {}", counts.empty() ? "" : ", ", outcome_name(o), n);
    result.reason = fmt::format("flaky over {} attempts ({}){}{}", result.attempts.size(), counts,
                                result.reason.empty() ? "" : ": ", result.reason);
  }
  return result;
}

ImplementationDescription describe_implementation(const ImplementationSource& source, const RunOptions& options) {
  ImplementationDescription d;
  d.implementation = {{"name", source.spec}, {"version", ""}, {"capabilities", nlohmann::json::object()}};
  if (!source.plugin.is_null()) d.implementation["plugin"] = source.plugin;
  if (!source.refusal.empty()) {
    d.error = source.refusal;
    return d;
  }
  auto describe = [&]() -> nlohmann::json {
    std::unique_ptr<Implementation> impl = source.factory();
    if (!impl) throw InternalError("the implementation factory returned nothing");
    return {{"name", impl->name()},
            {"version", impl->version()},
            {"capabilities", capabilities_json(impl->capabilities())}};
  };
  auto merge = [&](const nlohmann::json& j) {
    for (const char* key : {"name", "version", "capabilities"}) d.implementation[key] = j.at(key);
  };
  if (!options.isolate) {
    try {
      merge(describe());
    } catch (const std::exception& e) {
      d.error = fmt::format("the implementation could not be made: {}", e.what());
      const auto* err = dynamic_cast<const Error*>(&e);
      d.unsupported = err != nullptr && err->code() == ErrorCode::unsupported;
    }
    return d;
  }
  const testing::ChildExit reaped = testing::run_child(
      [&](int fd) {
        nlohmann::json j;
        try {
          j = describe();
        } catch (const std::exception& e) {
          const auto* err = dynamic_cast<const Error*>(&e);
          j = {{"error", e.what()}, {"unsupported", err != nullptr && err->code() == ErrorCode::unsupported}};
        }
        write_all(fd, j.dump());
      },
      child_options(options, source));
  try {
    const auto j = nlohmann::json::parse(reaped.result);
    if (j.contains("error")) {
      d.error = fmt::format("the implementation could not be made: {}", j.at("error").get<std::string>());
      d.unsupported = j.value("unsupported", false);
    } else {
      merge(j);
    }
  } catch (const std::exception&) {
    const std::string why = reaped.timed_out       ? "timed out"
                            : !reaped.started      ? reaped.output
                            : reaped.signal() != 0 ? "died of " + signal_text(reaped.signal())
                                                   : fmt::format("exited with status {}", reaped.exit_code());
    d.error = fmt::format("making the implementation crashed the process ({}){}", why,
                          reaped.output.empty() ? "" : "; last output: " + output_excerpt(reaped.output));
  }
  return d;
}

std::vector<CaseResult> run_cases(const std::vector<const Case*>& cases, const ImplementationSource& source,
                                  const RunOptions& options, const std::string& refusal) {
  const std::string why = !source.refusal.empty() ? source.refusal : refusal;
  const std::size_t repeat = std::max(1u, options.repeat);
  const std::size_t total = cases.size() * repeat;
  std::vector<std::vector<CaseResult>> attempts(cases.size());
  std::size_t done = 0;
  auto record = [&](std::size_t case_index, CaseResult r) {
    ++done;
    if (options.on_attempt) options.on_attempt(r, done, total);
    attempts[case_index].push_back(std::move(r));
  };

  if (!why.empty() || !source.factory) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      for (std::size_t a = 0; a < repeat; ++a) {
        record(i, make_result(*cases[i], Outcome::fail, why.empty() ? "no implementation to test" : why, 0.0));
      }
    }
  } else if (!options.isolate) {
    for (std::size_t i = 0; i < cases.size(); ++i) {
      for (std::size_t a = 0; a < repeat; ++a) record(i, run_in_process(*cases[i], source));
    }
  } else {
    // Cases the declared capabilities already rule out need no process.
    std::vector<std::size_t> runnable;
    for (std::size_t i = 0; i < cases.size(); ++i) {
      const std::string unmet = options.declared ? unmet_requirement(cases[i]->requirements, *options.declared) : "";
      if (unmet.empty()) {
        runnable.push_back(i);
        continue;
      }
      for (std::size_t a = 0; a < repeat; ++a) record(i, make_result(*cases[i], Outcome::not_supported, unmet, 0.0));
    }
    testing::run_children(
        runnable.size() * repeat,
        [&](std::size_t task) {
          const Case& c = *cases[runnable[task / repeat]];
          return testing::ChildBody([&c, &source](int fd) {
            const auto start = Clock::now();
            std::unique_ptr<Implementation> impl;
            CaseResult r;
            try {
              impl = source.factory();
              r = impl ? run_case(c, *impl)
                       : make_result(c, Outcome::fail, "the implementation factory returned nothing", 0.0);
            } catch (const std::exception& e) {
              r = factory_failure(c, e, seconds_since(start));
            }
            write_all(fd, result_to_json(r).dump() + "\n");
            impl.reset();  // the implementation's own teardown is part of what is tested
            write_all(fd, kReleasedMarker);
          });
        },
        options.jobs, child_options(options, source),
        [&](std::size_t task, const testing::ChildExit& reaped) {
          const std::size_t i = runnable[task / repeat];
          record(i, interpret(*cases[i], reaped, options));
        });
  }

  std::vector<CaseResult> results;
  results.reserve(cases.size());
  for (auto& a : attempts) results.push_back(combine_attempts(std::move(a)));
  return results;
}

}  // namespace stagekit::conformance
