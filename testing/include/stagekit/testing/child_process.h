// stagekit/testing/child_process.h — run functions in forked child processes that cannot take the
// caller down with them: the one place stagekit forks, pipes and polls.
//
// Every child is a copy of this process. It runs its body in its own process group, with stdin on
// /dev/null, its stdout and stderr on a captured pipe (or inherited, when not capturing), an
// optional address-space limit (RLIMIT_AS), and a time limit. The body gets the write end of a
// result pipe: what it writes there comes back as ChildExit::result. A body that returns ends the
// child with status 0, one that throws with status kUncaughtExceptionStatus (after printing the
// exception on stderr); the child never runs the destructors of the copied process (_exit).
//
// Invariants:
//   * when a child passes its time limit, its whole process group is killed (SIGKILL), so
//     grandchildren it started die with it; the child is reaped before its exit is reported;
//   * when a child exits, whatever is left of its process group is killed too;
//   * the captured output is bounded: only its last `output_tail_bytes` bytes are kept;
//   * stdio buffers are flushed before each fork, so nothing buffered is written twice;
//   * the caller's thread does all the waiting (no threads, no signal handlers are installed).
//
// A fork server (ChildOptions::fork_server) changes only where children are forked from: one server
// process, forked from the caller once per run_children(), prepares itself (e.g. starts an
// interpreter and imports what every child needs) and then forks each child on request, so that
// children start warm. Everything above still holds for them: the server passes each child the
// caller's pipes, reaps it and reports its wait status back; the caller keeps the time limits and
// kills over-time children's groups itself. The server dies with the caller (PR_SET_PDEATHSIG).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace stagekit::testing {

// Exit status of a child whose body threw.
inline constexpr int kUncaughtExceptionStatus = 3;

// The hooks of a fork server (see above). Every hook is optional.
struct ForkServer {
  std::function<void()> prepare;            // once, in the server, before its first fork
  std::function<void()> before_fork;        // in the server, just before each fork
  std::function<void()> after_fork_parent;  // in the server, just after each fork
  std::function<void()> after_fork_child;   // in each child, first thing after the fork
};

struct ChildOptions {
  std::chrono::milliseconds time_limit{std::chrono::minutes(5)};
  std::size_t memory_limit_bytes = 0;             // RLIMIT_AS of the child; 0 = no limit
  bool capture_output = true;                     // false: the child writes to this process's stdout/stderr
  std::size_t output_tail_bytes = 8192;           // the captured output kept (its end); at least 256
  std::shared_ptr<const ForkServer> fork_server;  // null: each child is forked from this process
};

// The body of a child: gets the file descriptor of its result pipe.
using ChildBody = std::function<void(int result_fd)>;

// How a child ended.
struct ChildExit {
  bool started = true;     // false: the child could not be started (`output` says why)
  bool timed_out = false;  // killed (with its process group) at the time limit
  int wait_status = 0;     // waitpid() status
  std::string result;      // everything the body wrote on its result pipe
  std::string output;      // the last output_tail_bytes of its stdout and stderr
  double seconds = 0.0;    // from fork to reaping

  // Exited by itself (not started, timed out and signalled are not exits).
  [[nodiscard]] bool exited() const noexcept;
  // The exit status when exited(), else -1.
  [[nodiscard]] int exit_code() const noexcept;
  // The signal that ended the child when it was not killed at the time limit, else 0.
  [[nodiscard]] int signal() const noexcept;
};

// Runs `body` in one child and waits for it (or for its time limit).
[[nodiscard]] ChildExit run_child(const ChildBody& body, const ChildOptions& options);

// Runs the bodies of tasks 0 .. tasks-1, each in its own child, at most `jobs` at once, starting
// them in task order; calls `done(task, exit)` from this thread as each child ends.
void run_children(std::size_t tasks, const std::function<ChildBody(std::size_t task)>& body_of, unsigned jobs,
                  const ChildOptions& options, const std::function<void(std::size_t task, ChildExit)>& done);

// "signal 11 (SIGSEGV: Segmentation fault)".
[[nodiscard]] std::string signal_text(int sig);

// Writes all of `data` to `fd`, retrying after EINTR; stops silently when the reader is gone.
void write_all(int fd, std::string_view data);

}  // namespace stagekit::testing
