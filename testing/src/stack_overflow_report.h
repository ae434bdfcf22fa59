// stack_overflow_report.h (internal to stagekit_testing) — makes a child process that dies of a
// stack overflow say so before it dies.
//
// A SIGSEGV whose fault address lies within 64 KiB of the faulting thread's stack pointer is taken
// for a stack overflow (unbounded recursion, such as a cycle in a state dict walked forever): a line
// saying so goes to stderr, which the runner quotes as the crash's last output, and the process then
// dies of the same SIGSEGV as before. Only the calling thread gets the alternate signal stack the
// report needs. Not installed under AddressSanitizer or ThreadSanitizer, which report it
// themselves.
#pragma once

namespace stagekit::testing::detail {

void report_stack_overflows() noexcept;

}  // namespace stagekit::testing::detail
