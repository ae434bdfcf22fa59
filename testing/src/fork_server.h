// fork_server.h (internal to stagekit::testing) — the fork server of child_process.h: a process forked
// once, prepared once, that forks every child on request and reports how each one ended.
//
// Protocol (one SOCK_SEQPACKET socket pair, fixed-size messages): the caller sends `start` with the
// task number and the write ends of the child's result and output pipes (SCM_RIGHTS); the server
// forks the child and answers `started` (its pid, or -1 and errno). When a child ends the server
// reaps it and sends `exited` (pid, wait status). The server ends when the caller closes the socket.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <functional>
#include <map>
#include <memory>

#include "stagekit/testing/child_process.h"

namespace stagekit::testing::detail {

// What runs in a child once it is forked: enters the child (process group, stdio, limits), runs the
// body with the result pipe, and _exits. Shared by both ways of forking.
[[noreturn]] void run_child_body(const ChildBody& body, int result_write, int output_write,
                                 const ChildOptions& options);

class ForkServerClient {
 public:
  // Forks the server; nullptr (errno set) when it cannot be started.
  static std::unique_ptr<ForkServerClient> start(const ForkServer& hooks,
                                                 const std::function<ChildBody(std::size_t)>& body_of,
                                                 const ChildOptions& options);
  ~ForkServerClient();
  ForkServerClient(const ForkServerClient&) = delete;
  ForkServerClient& operator=(const ForkServerClient&) = delete;

  // Asks for the child of `task`; the pid, or -1 with errno set. Closes neither descriptor.
  pid_t spawn(std::size_t task, int result_write, int output_write);
  // The socket to poll for exit reports.
  [[nodiscard]] int fd() const noexcept { return socket_; }
  // Reads the exit reports that are waiting (without blocking) into exited().
  void collect();
  // Waits (up to `limit_ms`) until the exit of `pid` has been reported; false if it never was.
  bool wait_for(pid_t pid, int limit_ms);
  // Children reaped by the server whose exit the caller has not taken yet: pid -> wait status.
  [[nodiscard]] std::map<pid_t, int>& exited() noexcept { return exited_; }
  // The server is gone (it died, or its socket failed): no more children, no more reports.
  [[nodiscard]] bool lost() const noexcept { return lost_; }

 private:
  ForkServerClient(pid_t pid, int socket) : pid_(pid), socket_(socket) {}
  bool receive(int timeout_ms);  // one message, handled; false on timeout or loss

  pid_t pid_ = -1;
  int socket_ = -1;
  bool lost_ = false;
  std::map<pid_t, int> exited_;
  pid_t last_started_ = 0;
  int last_errno_ = 0;
  bool answered_ = false;
};

}  // namespace stagekit::testing::detail
