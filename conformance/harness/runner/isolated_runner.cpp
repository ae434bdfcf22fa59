#include "runner/isolated_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <optional>

#include <fmt/format.h>

#include "runner/report_writers.h"

namespace stagekit::conformance {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view kReleasedMarker = "released";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string signal_text(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  const char* description = strsignal(sig);
  return fmt::format("signal {} (SIG{}: {})", sig, abbrev ? abbrev : "?", description ? description : "?");
}

void write_all(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

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

struct Child {
  pid_t pid = -1;
  int result_fd = -1;
  int output_fd = -1;
  std::string result;
  std::string output;
  Clock::time_point start;
  Clock::time_point deadline;
  std::size_t task = 0;
};

struct Reaped {
  std::string result;  // what the child wrote on its result pipe
  std::string output;  // the tail of its stdout/stderr
  bool timed_out = false;
  int status = 0;  // waitpid status (when not timed out)
  double seconds = 0.0;
};

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

// Forks a child that runs `body(result_fd)` with stdout/stderr on a captured pipe.
std::optional<Child> spawn(const std::function<void(int)>& body, const RunOptions& options) {
  int result_pipe[2];
  int output_pipe[2];
  if (pipe2(result_pipe, O_CLOEXEC) != 0) return std::nullopt;
  if (pipe2(output_pipe, O_CLOEXEC) != 0) {
    close(result_pipe[0]);
    close(result_pipe[1]);
    return std::nullopt;
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    for (int fd : {result_pipe[0], result_pipe[1], output_pipe[0], output_pipe[1]}) close(fd);
    return std::nullopt;
  }
  if (pid == 0) {
    setpgid(0, 0);  // a timeout kills the whole group, grandchildren included
    close(result_pipe[0]);
    close(output_pipe[0]);
    dup2(output_pipe[1], STDOUT_FILENO);
    dup2(output_pipe[1], STDERR_FILENO);
    close(output_pipe[1]);
    const int devnull = open("/dev/null", O_RDONLY);
    if (devnull >= 0) dup2(devnull, STDIN_FILENO);
    if (options.memory_limit_bytes > 0) {
      const rlimit limit{options.memory_limit_bytes, options.memory_limit_bytes};
      setrlimit(RLIMIT_AS, &limit);
    }
    try {
      body(result_pipe[1]);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "stagekit-conform child: uncaught exception: %s\n", e.what());
      std::fflush(nullptr);
      _exit(3);
    } catch (...) {
      std::fprintf(stderr, "stagekit-conform child: uncaught non-standard exception\n");
      std::fflush(nullptr);
      _exit(3);
    }
    std::fflush(nullptr);
    _exit(0);
  }
  setpgid(pid, pid);
  close(result_pipe[1]);
  close(output_pipe[1]);
  Child child;
  child.pid = pid;
  child.result_fd = result_pipe[0];
  child.output_fd = output_pipe[0];
  child.start = Clock::now();
  child.deadline = child.start + options.timeout;
  return child;
}

// Reads what is available on `fd` into `sink` (keeping at most `keep` bytes); closes it at EOF.
void drain(int& fd, std::string& sink, std::size_t keep) {
  char buf[8192];
  const ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) {
    close_fd(fd);
    return;
  }
  sink.append(buf, static_cast<std::size_t>(n));
  if (keep > 0 && sink.size() > 2 * keep) sink.erase(0, sink.size() - keep);
}

// Runs every body in its own child, at most `jobs` at once; calls `done(task, reaped)` as each ends.
void run_children(std::size_t tasks, const std::function<std::function<void(int)>(std::size_t)>& body_of,
                  const RunOptions& options, const std::function<void(std::size_t, Reaped)>& done) {
  std::deque<std::size_t> pending;
  for (std::size_t i = 0; i < tasks; ++i) pending.push_back(i);
  std::vector<Child> running;
  const std::size_t jobs = std::max(1u, options.jobs);
  const std::size_t keep = std::max<std::size_t>(options.output_tail_bytes, 256);

  auto finish = [&](Child& child, bool timed_out, int status) {
    close_fd(child.result_fd);
    close_fd(child.output_fd);
    Reaped r;
    r.result = std::move(child.result);
    r.output = std::move(child.output);
    if (r.output.size() > keep) r.output.erase(0, r.output.size() - keep);
    r.timed_out = timed_out;
    r.status = status;
    r.seconds = seconds_since(child.start);
    done(child.task, std::move(r));
  };

  while (!pending.empty() || !running.empty()) {
    while (running.size() < jobs && !pending.empty()) {
      const std::size_t task = pending.front();
      pending.pop_front();
      std::optional<Child> child = spawn(body_of(task), options);
      if (!child) {
        Reaped r;
        r.output = fmt::format("stagekit-conform: could not start a child process: {}", std::strerror(errno));
        r.status = -1;
        done(task, std::move(r));
        continue;
      }
      child->task = task;
      running.push_back(std::move(*child));
    }
    if (running.empty()) continue;

    std::vector<pollfd> fds;
    auto now = Clock::now();
    auto wake = now + std::chrono::milliseconds(200);
    bool waiting_for_exit = false;
    for (const Child& c : running) {
      if (c.result_fd >= 0) fds.push_back({c.result_fd, POLLIN, 0});
      if (c.output_fd >= 0) fds.push_back({c.output_fd, POLLIN, 0});
      if (c.result_fd < 0 && c.output_fd < 0) waiting_for_exit = true;
      wake = std::min(wake, c.deadline);
    }
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    if (waiting_for_exit) wait_ms = std::min(wait_ms, 5);
    const int ready = poll(fds.data(), fds.size(), std::max(wait_ms, 0));
    if (ready < 0 && errno != EINTR) throw InternalError(fmt::format("poll failed: {}", std::strerror(errno)));

    for (Child& c : running) {
      for (const pollfd& p : fds) {
        if (p.revents == 0) continue;
        if (p.fd == c.result_fd) drain(c.result_fd, c.result, 0);
        else if (p.fd == c.output_fd) drain(c.output_fd, c.output, keep);
      }
    }
    now = Clock::now();
    for (auto it = running.begin(); it != running.end();) {
      Child& c = *it;
      int status = 0;
      const pid_t reaped = waitpid(c.pid, &status, WNOHANG);
      if (reaped == c.pid) {
        // The child is gone; what is left in its pipes (written by lingering grandchildren aside) is read.
        while (c.result_fd >= 0) drain(c.result_fd, c.result, 0);
        for (int i = 0; i < 64 && c.output_fd >= 0; ++i) {
          pollfd p{c.output_fd, POLLIN, 0};
          if (poll(&p, 1, 0) <= 0) break;
          drain(c.output_fd, c.output, keep);
        }
        kill(-c.pid, SIGKILL);  // grandchildren left behind
        finish(c, false, status);
        it = running.erase(it);
        continue;
      }
      if (now >= c.deadline) {
        kill(-c.pid, SIGKILL);
        kill(c.pid, SIGKILL);
        while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
        }
        finish(c, true, status);
        it = running.erase(it);
        continue;
      }
      ++it;
    }
  }
}

// Turns what a case's child left behind into the case's result.
CaseResult interpret(const Case& c, const Reaped& r, const RunOptions& options) {
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
      if (outcome) reported = make_result(c, *outcome, j.at("reason").get<std::string>(), j.at("seconds").get<double>());
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
    std::string what = reported ? fmt::format("the case finished ({}) but its process did not exit within {:g} s "
                                              "(hung while releasing the implementation); killed",
                                              outcome_name(reported->outcome), limit)
                                : fmt::format("did not finish within {:g} s; killed", limit);
    return with_output(make_result(c, Outcome::timeout, {}, r.seconds), what);
  }
  if (r.status == -1) return with_output(make_result(c, Outcome::crash, {}, r.seconds), "could not start the case");
  if (WIFSIGNALED(r.status)) {
    const std::string sig = signal_text(WTERMSIG(r.status));
    std::string what = reported && !released
                           ? fmt::format("the case finished ({}) but its process then died of {} while releasing "
                                         "the implementation",
                                         outcome_name(reported->outcome), sig)
                           : fmt::format("died of {}", sig);
    return with_output(make_result(c, Outcome::crash, {}, r.seconds), what);
  }
  const int code = WIFEXITED(r.status) ? WEXITSTATUS(r.status) : -1;
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
    return {{"name", impl->name()}, {"version", impl->version()}, {"capabilities", capabilities_json(impl->capabilities())}};
  };
  auto merge = [&](const nlohmann::json& j) {
    for (const char* key : {"name", "version", "capabilities"}) d.implementation[key] = j.at(key);
  };
  if (!options.isolate) {
    try {
      merge(describe());
    } catch (const std::exception& e) {
      d.error = fmt::format("the implementation could not be made: {}", e.what());
    }
    return d;
  }
  Reaped reaped;
  RunOptions o = options;
  o.jobs = 1;
  run_children(
      1,
      [&](std::size_t) {
        return std::function<void(int)>([&](int fd) {
          nlohmann::json j;
          try {
            j = describe();
          } catch (const std::exception& e) {
            j = {{"error", e.what()}};
          }
          write_all(fd, j.dump());
        });
      },
      o, [&](std::size_t, Reaped r) { reaped = std::move(r); });
  try {
    const auto j = nlohmann::json::parse(reaped.result);
    if (j.contains("error")) {
      d.error = fmt::format("the implementation could not be made: {}", j.at("error").get<std::string>());
    } else {
      merge(j);
    }
  } catch (const std::exception&) {
    std::string why = reaped.timed_out ? "timed out" : WIFSIGNALED(reaped.status) ? "died of " + signal_text(WTERMSIG(reaped.status)) : fmt::format("exited with status {}", WEXITSTATUS(reaped.status));
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
    run_children(
        total,
        [&](std::size_t task) {
          const Case& c = *cases[task / repeat];
          return std::function<void(int)>([&c, &source](int fd) {
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
        options, [&](std::size_t task, Reaped reaped) { record(task / repeat, interpret(*cases[task / repeat], reaped, options)); });
  }

  std::vector<CaseResult> results;
  results.reserve(cases.size());
  for (auto& a : attempts) results.push_back(combine_attempts(std::move(a)));
  return results;
}

}  // namespace stagekit::conformance
