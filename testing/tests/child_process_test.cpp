// The child-process helper: exit statuses, signals, uncaught exceptions, the result pipe, captured
// and bounded output, a time limit that kills the child's whole process group, the address-space
// limit, several children at once, and the same through a fork server.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "stagekit/testing/child_process.h"

namespace stagekit::testing {
namespace {

using namespace std::chrono_literals;

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizer = true;
#else
constexpr bool kSanitizer = false;
#endif

ChildOptions with_limit(std::chrono::milliseconds limit) {
  ChildOptions o;
  o.time_limit = limit;
  return o;
}

TEST(ChildProcess, ABodyThatReturnsExitsWithStatusZeroAndItsResult) {
  const ChildExit e = run_child([](int fd) { write_all(fd, "hello from the child"); }, with_limit(10s));
  EXPECT_TRUE(e.started);
  EXPECT_FALSE(e.timed_out);
  EXPECT_TRUE(e.exited());
  EXPECT_EQ(e.exit_code(), 0);
  EXPECT_EQ(e.signal(), 0);
  EXPECT_EQ(e.result, "hello from the child");
}

TEST(ChildProcess, ExitStatusIsReported) {
  const ChildExit e = run_child([](int) { _exit(7); }, with_limit(10s));
  EXPECT_TRUE(e.exited());
  EXPECT_EQ(e.exit_code(), 7);
  EXPECT_EQ(e.signal(), 0);
  EXPECT_EQ(e.result, "");
}

TEST(ChildProcess, ASignalIsReportedAndNamed) {
  const ChildExit e = run_child(
      [](int fd) {
        write_all(fd, "before");
        std::signal(SIGABRT, SIG_DFL);
        raise(SIGABRT);
      },
      with_limit(10s));
  EXPECT_FALSE(e.exited());
  EXPECT_EQ(e.exit_code(), -1);
  EXPECT_EQ(e.signal(), SIGABRT);
  EXPECT_EQ(e.result, "before") << "what was written before the crash comes back";
  EXPECT_EQ(signal_text(SIGSEGV).rfind(fmt::format("signal {} (SIGSEGV: ", SIGSEGV), 0), 0U) << signal_text(SIGSEGV);
}

TEST(ChildProcess, AnUncaughtExceptionIsItsOwnStatusWithTheMessageInTheOutput) {
  const ChildExit e = run_child([](int) { throw std::runtime_error("no such tensor"); }, with_limit(10s));
  EXPECT_EQ(e.exit_code(), kUncaughtExceptionStatus);
  EXPECT_NE(e.output.find("uncaught exception: no such tensor"), std::string::npos) << e.output;
}

TEST(ChildProcess, OutputIsCapturedAndOnlyItsEndKept) {
  ChildOptions o = with_limit(10s);
  o.output_tail_bytes = 1000;
  const ChildExit e = run_child(
      [](int) {
        std::printf("first line\n");
        std::fflush(stdout);
        for (int i = 0; i < 2000; ++i) std::fprintf(stderr, "%099d\n", i);  // 200 KB
        std::printf("the last words");
      },
      o);
  EXPECT_EQ(e.exit_code(), 0);
  EXPECT_LE(e.output.size(), 1000U);
  EXPECT_GE(e.output.size(), 900U);
  EXPECT_EQ(e.output.find("first line"), std::string::npos) << "the beginning is dropped";
  EXPECT_NE(e.output.find("the last words"), std::string::npos) << "stdout after stderr, flushed at exit";
  EXPECT_NE(e.output.find(fmt::format("{:099d}", 1999)), std::string::npos) << "stderr is captured too";
}

TEST(ChildProcess, OutputIsNotCapturedWhenAskedNotTo) {
  ChildOptions o = with_limit(10s);
  o.capture_output = false;
  ::testing::internal::CaptureStdout();
  const ChildExit e = run_child([](int) { std::printf("child output\n"); }, o);
  const std::string seen = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(e.exit_code(), 0);
  EXPECT_EQ(e.output, "");
  EXPECT_NE(seen.find("child output"), std::string::npos) << "the child writes to this process's stdout";
}

TEST(ChildProcess, StdinIsEmpty) {
  const ChildExit e = run_child(
      [](int fd) {
        char c = 0;
        write_all(fd, read(STDIN_FILENO, &c, 1) == 0 ? "eof" : "data");
      },
      with_limit(10s));
  EXPECT_EQ(e.result, "eof");
}

// The child starts a grandchild in its group and hangs; at the time limit both must die. This
// process becomes the grandchild's reaper, so that it can see how the grandchild ended.
TEST(ChildProcess, TheTimeLimitKillsTheWholeProcessGroup) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const auto start = std::chrono::steady_clock::now();
  const ChildExit e = run_child(
      [](int fd) {
        const pid_t grandchild = fork();
        if (grandchild == 0) {
          for (;;) pause();
        }
        write_all(fd, std::to_string(grandchild));
        std::printf("waiting forever\n");
        std::fflush(stdout);
        for (;;) pause();
      },
      with_limit(1s));
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_TRUE(e.timed_out);
  EXPECT_FALSE(e.exited());
  EXPECT_EQ(e.signal(), 0) << "a child killed at the time limit is a timeout, not a signal";
  EXPECT_GE(elapsed, 0.9);
  EXPECT_LT(elapsed, 10.0);
  EXPECT_NE(e.output.find("waiting forever"), std::string::npos) << e.output;
  const pid_t grandchild = static_cast<pid_t>(std::stol(e.result));
  ASSERT_GT(grandchild, 0);
  int status = 0;
  pid_t reaped = -1;
  for (int i = 0; i < 100 && reaped != grandchild; ++i) {
    reaped = waitpid(grandchild, &status, WNOHANG);
    if (reaped != grandchild) std::this_thread::sleep_for(50ms);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_EQ(reaped, grandchild) << "the grandchild is still running after its group's time limit";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

// A child that exits leaves no grandchild behind either.
TEST(ChildProcess, GrandchildrenLeftBehindByAnExitingChildAreKilled) {
  ASSERT_EQ(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
  const ChildExit e = run_child(
      [](int fd) {
        const pid_t grandchild = fork();
        if (grandchild == 0) {
          for (;;) pause();
        }
        write_all(fd, std::to_string(grandchild));
      },
      with_limit(10s));
  EXPECT_EQ(e.exit_code(), 0);
  const pid_t grandchild = static_cast<pid_t>(std::stol(e.result));
  int status = 0;
  pid_t reaped = -1;
  for (int i = 0; i < 100 && reaped != grandchild; ++i) {
    reaped = waitpid(grandchild, &status, WNOHANG);
    if (reaped != grandchild) std::this_thread::sleep_for(50ms);
  }
  prctl(PR_SET_CHILD_SUBREAPER, 0);
  ASSERT_EQ(reaped, grandchild) << "the grandchild outlived its parent's exit";
  EXPECT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

TEST(ChildProcess, TheMemoryLimitMakesALargeAllocationFail) {
  if (kSanitizer) GTEST_SKIP() << "not_supported: sanitizers reserve more address space than any RLIMIT_AS allows";
  auto try_to_allocate = [](int fd) {
    try {
      const std::unique_ptr<char[]> big(new char[std::size_t{1} << 30]);  // reserved; one page touched
      static_cast<volatile char*>(big.get())[0] = 1;
      write_all(fd, "allocated");
    } catch (const std::bad_alloc&) {
      write_all(fd, "bad_alloc");
    }
  };
  ChildOptions limited = with_limit(30s);
  limited.memory_limit_bytes = std::size_t{256} << 20;
  EXPECT_EQ(run_child(try_to_allocate, limited).result, "bad_alloc");
  EXPECT_EQ(run_child(try_to_allocate, with_limit(30s)).result, "allocated") << "without a limit it fits";
}

TEST(ChildProcess, SeveralChildrenRunAtOnceAndEachEndIsReportedOnce) {
  std::map<std::size_t, ChildExit> ends;
  const auto start = std::chrono::steady_clock::now();
  run_children(
      4,
      [](std::size_t task) {
        return ChildBody([task](int fd) {
          std::this_thread::sleep_for(500ms);
          write_all(fd, fmt::format("task {}", task));
          if (task == 2) _exit(5);
        });
      },
      2, with_limit(10s), [&](std::size_t task, ChildExit e) { EXPECT_TRUE(ends.emplace(task, std::move(e)).second); });
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(ends.size(), 4U);
  for (std::size_t task = 0; task < 4; ++task) {
    EXPECT_EQ(ends.at(task).result, fmt::format("task {}", task));
    EXPECT_EQ(ends.at(task).exit_code(), task == 2 ? 5 : 0);
  }
  EXPECT_GE(elapsed, 0.95) << "at most 2 at once: two rounds of 500 ms";
  EXPECT_LT(elapsed, 1.9) << "2 at once: not four rounds";
}

// ---- through a fork server ------------------------------------------------------------------------

pid_t g_prepared_in = 0;  // set by the server's prepare hook, seen by its children
int g_after_fork_child_calls = 0;

ChildOptions through_server(std::chrono::milliseconds limit) {
  ChildOptions o = with_limit(limit);
  auto server = std::make_shared<ForkServer>();
  server->prepare = [] { g_prepared_in = getpid(); };
  server->after_fork_child = [] { ++g_after_fork_child_calls; };
  o.fork_server = std::move(server);
  return o;
}

TEST(ForkServer, ChildrenForkFromOnePreparedServerAndReportLikeDirectChildren) {
  std::map<std::size_t, ChildExit> ends;
  run_children(
      5,
      [](std::size_t task) {
        return ChildBody([task](int fd) {
          std::fprintf(stderr, "output of task %zu\n", task);
          write_all(fd, fmt::format("{} {} {} {}", task, g_prepared_in, getppid(), g_after_fork_child_calls));
          if (task == 1) _exit(9);
          if (task == 2) raise(SIGTERM);  // not SIGSEGV: sanitizers turn that into an exit
          if (task == 3) throw std::runtime_error("thrown in task 3");
        });
      },
      2, through_server(10s),
      [&](std::size_t task, ChildExit e) { EXPECT_TRUE(ends.emplace(task, std::move(e)).second); });
  ASSERT_EQ(ends.size(), 5U);
  EXPECT_EQ(g_prepared_in, 0) << "prepare ran in the server, not in the caller";
  pid_t server = 0;
  for (std::size_t task = 0; task < 5; ++task) {
    const ChildExit& e = ends.at(task);
    ASSERT_TRUE(e.started) << e.output;
    int got_task = -1, prepared = 0, parent = 0, hooks = 0;
    ASSERT_EQ(std::sscanf(e.result.c_str(), "%d %d %d %d", &got_task, &prepared, &parent, &hooks), 4) << e.result;
    EXPECT_EQ(got_task, static_cast<int>(task));
    EXPECT_EQ(prepared, parent) << "every child was forked by the prepared server";
    EXPECT_NE(parent, getpid());
    EXPECT_EQ(hooks, 1) << "after_fork_child ran once in each child";
    if (server == 0) server = parent;
    EXPECT_EQ(parent, server) << "one server for the whole run";
    EXPECT_NE(e.output.find(fmt::format("output of task {}", task)), std::string::npos) << e.output;
  }
  EXPECT_EQ(ends.at(0).exit_code(), 0);
  EXPECT_EQ(ends.at(1).exit_code(), 9);
  EXPECT_EQ(ends.at(2).signal(), SIGTERM);
  EXPECT_EQ(ends.at(3).exit_code(), kUncaughtExceptionStatus);
  EXPECT_NE(ends.at(3).output.find("thrown in task 3"), std::string::npos);
  EXPECT_EQ(kill(server, 0), -1) << "the server is gone once the run is over";
}

TEST(ForkServer, AChildPastItsLimitIsKilledWithItsGroupAndTheRunGoesOn) {
  std::map<std::size_t, ChildExit> ends;
  run_children(
      3,
      [](std::size_t task) {
        return ChildBody([task](int fd) {
          if (task == 0) {
            if (fork() == 0) pause();  // a grandchild in the same group
            pause();
          }
          write_all(fd, "done");
        });
      },
      1, through_server(1s), [&](std::size_t task, ChildExit e) { ends.emplace(task, std::move(e)); });
  ASSERT_EQ(ends.size(), 3U);
  EXPECT_TRUE(ends.at(0).timed_out);
  EXPECT_EQ(ends.at(1).result, "done");
  EXPECT_EQ(ends.at(2).exit_code(), 0);
}

}  // namespace
}  // namespace stagekit::testing
