#include "stagekit/probe/child_process.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace stagekit::probe {

ChildOutcome run_in_child(const std::function<std::string()>& fn, std::chrono::seconds limit) {
  int fds[2];
  if (pipe(fds) != 0) return {false, fmt::format("pipe failed: {}", std::strerror(errno))};
  const pid_t pid = fork();
  if (pid < 0) {
    close(fds[0]);
    close(fds[1]);
    return {false, fmt::format("fork failed: {}", std::strerror(errno))};
  }
  if (pid == 0) {
    close(fds[0]);
    std::string message;
    try {
      message = fn();
    } catch (const std::exception& e) {
      message = std::string("uncaught exception in the child: ") + e.what();
    } catch (...) {
      message = "uncaught non-standard exception in the child";
    }
    const std::string payload = (message.empty() ? "OK" : "FAIL ") + message;
    const char* p = payload.data();
    std::size_t left = payload.size();
    while (left > 0) {
      const ssize_t n = write(fds[1], p, left);
      if (n <= 0) break;
      p += n;
      left -= static_cast<std::size_t>(n);
    }
    close(fds[1]);
    _exit(0);
  }
  close(fds[1]);
  std::string received;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
      close(fds[0]);
      return {false, fmt::format("the child did not finish within {} s (killed)", limit.count())};
    }
    pollfd pfd{fds[0], POLLIN, 0};
    const int ready = poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) continue;
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    received.append(buf, static_cast<std::size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    return {false, fmt::format("the child died of signal {} ({}); it said: '{}'", WTERMSIG(status),
                               strsignal(WTERMSIG(status)), received)};
  }
  if (received.rfind("OK", 0) == 0) return {true, {}};
  if (received.rfind("FAIL ", 0) == 0) return {false, received.substr(5)};
  return {false, fmt::format("the child exited with status {} without a verdict", WEXITSTATUS(status))};
}

}  // namespace stagekit::probe
