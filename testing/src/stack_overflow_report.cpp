#include "stack_overflow_report.h"

#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <array>
#include <cstdint>

namespace stagekit::testing::detail {

#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)

namespace {

constexpr std::uintptr_t kNearStackPointer = 64 * 1024;
constexpr char kMessage[] =
    "stack overflow: the case's stack ran out (unbounded recursion, such as a cycle in the state dict "
    "walked forever)\n";

alignas(16) std::array<char, 64 * 1024> g_alternate_stack;

std::uintptr_t stack_pointer(const void* context) noexcept {
  const auto* uc = static_cast<const ucontext_t*>(context);
#if defined(__x86_64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
#elif defined(__aarch64__)
  return static_cast<std::uintptr_t>(uc->uc_mcontext.sp);
#else
  (void)uc;
  return 0;
#endif
}

void on_segv(int, siginfo_t* info, void* context) {
  const std::uintptr_t sp = stack_pointer(context);
  const auto address = reinterpret_cast<std::uintptr_t>(info->si_addr);
  const std::uintptr_t distance = address > sp ? address - sp : sp - address;
  // si_code > 0: a fault the kernel raised (not a SIGSEGV sent with kill() or raise()).
  if (info->si_code > 0 && sp != 0 && distance < kNearStackPointer) {
    (void)!write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  }
  // SA_RESETHAND restored the default action. The signal raised here is blocked until the handler
  // returns, and then ends the process with SIGSEGV as it would have without this handler — also
  // for a SIGSEGV sent with raise() or kill(), which no re-run access would repeat.
  raise(SIGSEGV);
}

}  // namespace

void report_stack_overflows() noexcept {
  stack_t alternate{};
  alternate.ss_sp = g_alternate_stack.data();
  alternate.ss_size = g_alternate_stack.size();
  if (sigaltstack(&alternate, nullptr) != 0) return;
  struct sigaction action {};
  action.sa_sigaction = &on_segv;
  action.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND;
  sigemptyset(&action.sa_mask);
  sigaction(SIGSEGV, &action, nullptr);
}

#else

void report_stack_overflows() noexcept {}  // the sanitizers report a stack overflow themselves

#endif

}  // namespace stagekit::testing::detail
