#include "stagekit/testing/run_in_child.h"

#include <string.h>

#include <exception>

#include <fmt/format.h>

#include "stagekit/testing/child_process.h"

namespace stagekit::probe {

ChildOutcome run_in_child(const std::function<std::string()>& fn, std::chrono::seconds limit) {
  testing::ChildOptions options;
  options.time_limit = limit;
  options.capture_output = false;
  const testing::ChildExit exit = testing::run_child(
      [&fn](int result_fd) {
        std::string message;
        try {
          message = fn();
        } catch (const std::exception& e) {
          message = std::string("uncaught exception in the child: ") + e.what();
        } catch (...) {
          message = "uncaught non-standard exception in the child";
        }
        testing::write_all(result_fd, (message.empty() ? "OK" : "FAIL ") + message);
      },
      options);
  const std::string& received = exit.result;
  if (!exit.started) return {false, exit.output};
  if (exit.timed_out) return {false, fmt::format("the child did not finish within {} s (killed)", limit.count())};
  if (const int sig = exit.signal(); sig != 0) {
    return {false, fmt::format("the child died of signal {} ({}); it said: '{}'", sig, strsignal(sig), received)};
  }
  if (received.rfind("OK", 0) == 0) return {true, {}};
  if (received.rfind("FAIL ", 0) == 0) return {false, received.substr(5)};
  return {false, fmt::format("the child exited with status {} without a verdict", exit.exit_code())};
}

}  // namespace stagekit::probe
