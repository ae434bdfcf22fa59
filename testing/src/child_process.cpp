#include "stagekit/testing/child_process.h"

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
#include <exception>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <vector>

#include <fmt/format.h>

#include "fork_server.h"
#include "stack_overflow_report.h"

namespace stagekit::testing {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMinimumTail = 256;

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

void close_fd(int& fd) {
  if (fd >= 0) close(fd);
  fd = -1;
}

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// In the child: everything between fork() and the body.
void enter_child(int output_write, const ChildOptions& options) {
  setpgid(0, 0);  // a time limit kills the whole group, grandchildren included
  if (output_write >= 0) {
    dup2(output_write, STDOUT_FILENO);
    dup2(output_write, STDERR_FILENO);
    close(output_write);
  }
  const int devnull = open("/dev/null", O_RDONLY);
  if (devnull >= 0) {
    dup2(devnull, STDIN_FILENO);
    if (devnull != STDIN_FILENO) close(devnull);
  }
  if (options.memory_limit_bytes > 0) {
    const rlimit limit{options.memory_limit_bytes, options.memory_limit_bytes};
    setrlimit(RLIMIT_AS, &limit);
  }
  detail::report_stack_overflows();
}

// The pipes of one child: the caller keeps the read ends, the child gets the write ends.
struct ChildPipes {
  int result[2] = {-1, -1};
  int output[2] = {-1, -1};
  bool open(bool capture) {
    if (pipe2(result, O_CLOEXEC) != 0) return false;
    if (capture && pipe2(output, O_CLOEXEC) != 0) {
      const int saved = errno;
      close_all();
      errno = saved;
      return false;
    }
    return true;
  }
  void close_write_ends() {
    close_fd(result[1]);
    close_fd(output[1]);
  }
  void close_all() {
    for (int* fd : {&result[0], &result[1], &output[0], &output[1]}) close_fd(*fd);
  }
};

// Starts the child of `task` (from this process, or through the fork server); nullopt (errno set)
// when it cannot be started.
std::optional<Child> spawn(std::size_t task, const std::function<ChildBody(std::size_t)>& body_of,
                           const ChildOptions& options, detail::ForkServerClient* server) {
  ChildPipes pipes;
  if (!pipes.open(options.capture_output)) return std::nullopt;
  pid_t pid = -1;
  if (server != nullptr) {
    pid = server->spawn(task, pipes.result[1], pipes.output[1]);
  } else {
    std::cout.flush();
    std::cerr.flush();
    std::fflush(nullptr);
    const ChildBody body = body_of(task);
    pid = fork();
    if (pid == 0) {
      close(pipes.result[0]);
      if (pipes.output[0] >= 0) close(pipes.output[0]);
      detail::run_child_body(body, pipes.result[1], pipes.output[1], options);
    }
  }
  if (pid < 0) {
    const int saved = errno;
    pipes.close_all();
    errno = saved;
    return std::nullopt;
  }
  setpgid(pid, pid);  // also here: the group exists before the parent may have to kill it
  pipes.close_write_ends();
  Child child;
  child.pid = pid;
  child.result_fd = pipes.result[0];
  child.output_fd = pipes.output[0];
  child.start = Clock::now();
  child.deadline = child.start + options.time_limit;
  child.task = task;
  return child;
}

// Reads what is available on `fd` into `sink` (keeping at most about 2 x `keep` bytes when `keep`
// is not 0); closes `fd` at end of file.
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

}  // namespace

namespace detail {

void run_child_body(const ChildBody& body, int result_write, int output_write, const ChildOptions& options) {
  enter_child(output_write, options);
  try {
    body(result_write);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "child process: uncaught exception: %s\n", e.what());
    std::fflush(nullptr);
    _exit(kUncaughtExceptionStatus);
  } catch (...) {
    std::fprintf(stderr, "child process: uncaught non-standard exception\n");
    std::fflush(nullptr);
    _exit(kUncaughtExceptionStatus);
  }
  std::fflush(nullptr);
  _exit(0);
}

}  // namespace detail

bool ChildExit::exited() const noexcept { return started && !timed_out && WIFEXITED(wait_status); }

int ChildExit::exit_code() const noexcept { return exited() ? WEXITSTATUS(wait_status) : -1; }

int ChildExit::signal() const noexcept {
  return started && !timed_out && WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0;
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

void run_children(std::size_t tasks, const std::function<ChildBody(std::size_t)>& body_of, unsigned jobs,
                  const ChildOptions& options, const std::function<void(std::size_t, ChildExit)>& done) {
  std::deque<std::size_t> pending;
  for (std::size_t i = 0; i < tasks; ++i) pending.push_back(i);
  std::vector<Child> running;
  const std::size_t max_running = std::max(1U, jobs);
  const std::size_t keep = std::max(options.output_tail_bytes, kMinimumTail);
  std::unique_ptr<detail::ForkServerClient> server;
  if (options.fork_server && tasks > 0) {
    server = detail::ForkServerClient::start(*options.fork_server, body_of, options);
    if (!server) {
      const std::string why = fmt::format("could not start the fork server: {}", std::strerror(errno));
      for (std::size_t task = 0; task < tasks; ++task) {
        ChildExit exit;
        exit.started = false;
        exit.output = why;
        done(task, std::move(exit));
      }
      return;
    }
  }

  auto finish = [&](Child& child, bool timed_out, int status) {
    close_fd(child.result_fd);
    close_fd(child.output_fd);
    ChildExit exit;
    exit.result = std::move(child.result);
    exit.output = std::move(child.output);
    if (exit.output.size() > keep) exit.output.erase(0, exit.output.size() - keep);
    exit.timed_out = timed_out;
    exit.wait_status = status;
    exit.seconds = seconds_since(child.start);
    done(child.task, std::move(exit));
  };
  // The child is gone: nullopt while it runs, else its wait status. A child of a fork server that
  // died is reported as killed (SIGKILL, the server's death signal for its children).
  auto reaped_status = [&](const Child& c) -> std::optional<int> {
    int status = 0;
    if (!server) {
      if (waitpid(c.pid, &status, WNOHANG) == c.pid) return status;
      return std::nullopt;
    }
    auto it = server->exited().find(c.pid);
    if (it != server->exited().end()) {
      status = it->second;
      server->exited().erase(it);
      return status;
    }
    if (server->lost() && c.result_fd < 0 && c.output_fd < 0) return SIGKILL;  // W_EXITCODE(0, SIGKILL)
    return std::nullopt;
  };

  while (!pending.empty() || !running.empty()) {
    while (running.size() < max_running && !pending.empty()) {
      const std::size_t task = pending.front();
      pending.pop_front();
      std::optional<Child> child = spawn(task, body_of, options, server.get());
      if (!child) {
        ChildExit exit;
        exit.started = false;
        exit.output = server && server->lost()
                          ? std::string("could not start a child process: the fork server is gone")
                          : fmt::format("could not start a child process: {}", std::strerror(errno));
        done(task, std::move(exit));
        continue;
      }
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
    if (server && !server->lost()) fds.push_back({server->fd(), POLLIN, 0});
    int wait_ms = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(wake - now).count());
    if (waiting_for_exit && !server) wait_ms = std::min(wait_ms, 5);
    const int ready = poll(fds.data(), fds.size(), std::max(wait_ms, 0));
    if (ready < 0 && errno != EINTR) throw std::runtime_error(fmt::format("poll failed: {}", std::strerror(errno)));

    for (Child& c : running) {
      for (const pollfd& p : fds) {
        if (p.revents == 0) continue;
        if (p.fd == c.result_fd)
          drain(c.result_fd, c.result, 0);
        else if (p.fd == c.output_fd)
          drain(c.output_fd, c.output, keep);
      }
    }
    if (server) server->collect();
    now = Clock::now();
    for (auto it = running.begin(); it != running.end();) {
      Child& c = *it;
      if (const std::optional<int> status = reaped_status(c)) {
        // The child is gone: the grandchildren it left behind go too (they could hold its pipes
        // open), then what is left in its pipes is read.
        kill(-c.pid, SIGKILL);
        while (c.result_fd >= 0) drain(c.result_fd, c.result, 0);
        for (int i = 0; i < 64 && c.output_fd >= 0; ++i) {
          pollfd p{c.output_fd, POLLIN, 0};
          if (poll(&p, 1, 0) <= 0) break;
          drain(c.output_fd, c.output, keep);
        }
        finish(c, false, *status);
        it = running.erase(it);
        continue;
      }
      if (now >= c.deadline) {
        kill(-c.pid, SIGKILL);
        kill(c.pid, SIGKILL);
        int status = SIGKILL;
        if (!server) {
          while (waitpid(c.pid, &status, 0) < 0 && errno == EINTR) {
          }
        } else if (server->wait_for(c.pid, 10000)) {
          status = server->exited()[c.pid];
          server->exited().erase(c.pid);
        }
        finish(c, true, status);
        it = running.erase(it);
        continue;
      }
      ++it;
    }
  }
}

ChildExit run_child(const ChildBody& body, const ChildOptions& options) {
  ChildExit out;
  run_children(
      1, [&body](std::size_t) { return body; }, 1, options,
      [&out](std::size_t, ChildExit exit) { out = std::move(exit); });
  return out;
}

}  // namespace stagekit::testing
