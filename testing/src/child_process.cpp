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
}

// Forks a child that runs `body(result_fd)`; nullopt (errno set) when it cannot be started.
std::optional<Child> spawn(const ChildBody& body, const ChildOptions& options) {
  int result_pipe[2] = {-1, -1};
  int output_pipe[2] = {-1, -1};
  if (pipe2(result_pipe, O_CLOEXEC) != 0) return std::nullopt;
  if (options.capture_output && pipe2(output_pipe, O_CLOEXEC) != 0) {
    const int saved = errno;
    close(result_pipe[0]);
    close(result_pipe[1]);
    errno = saved;
    return std::nullopt;
  }
  std::cout.flush();
  std::cerr.flush();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    const int saved = errno;
    for (int fd : {result_pipe[0], result_pipe[1], output_pipe[0], output_pipe[1]}) {
      if (fd >= 0) close(fd);
    }
    errno = saved;
    return std::nullopt;
  }
  if (pid == 0) {
    close(result_pipe[0]);
    if (output_pipe[0] >= 0) close(output_pipe[0]);
    enter_child(output_pipe[1], options);
    try {
      body(result_pipe[1]);
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
  setpgid(pid, pid);  // also here: the group exists before the parent may have to kill it
  close(result_pipe[1]);
  if (output_pipe[1] >= 0) close(output_pipe[1]);
  Child child;
  child.pid = pid;
  child.result_fd = result_pipe[0];
  child.output_fd = output_pipe[0];
  child.start = Clock::now();
  child.deadline = child.start + options.time_limit;
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

  while (!pending.empty() || !running.empty()) {
    while (running.size() < max_running && !pending.empty()) {
      const std::size_t task = pending.front();
      pending.pop_front();
      std::optional<Child> child = spawn(body_of(task), options);
      if (!child) {
        ChildExit exit;
        exit.started = false;
        exit.output = fmt::format("could not start a child process: {}", std::strerror(errno));
        done(task, std::move(exit));
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
    now = Clock::now();
    for (auto it = running.begin(); it != running.end();) {
      Child& c = *it;
      int status = 0;
      const pid_t reaped = waitpid(c.pid, &status, WNOHANG);
      if (reaped == c.pid) {
        // The child is gone: the grandchildren it left behind go too (they could hold its pipes
        // open), then what is left in its pipes is read.
        kill(-c.pid, SIGKILL);
        while (c.result_fd >= 0) drain(c.result_fd, c.result, 0);
        for (int i = 0; i < 64 && c.output_fd >= 0; ++i) {
          pollfd p{c.output_fd, POLLIN, 0};
          if (poll(&p, 1, 0) <= 0) break;
          drain(c.output_fd, c.output, keep);
        }
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

ChildExit run_child(const ChildBody& body, const ChildOptions& options) {
  ChildExit out;
  run_children(
      1, [&body](std::size_t) { return body; }, 1, options,
      [&out](std::size_t, ChildExit exit) { out = std::move(exit); });
  return out;
}

}  // namespace stagekit::testing
