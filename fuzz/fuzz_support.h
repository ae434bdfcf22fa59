// fuzz_support.h — what every stagekit fuzz target checks besides the sanitizers (fuzz/README.md):
// a bound on any single allocation made while decoding, and the soundness of a decoded tree.
//
// The bound: while an AllocationBound is alive, a sanitizer malloc hook aborts (a crash for
// libFuzzer) on any single allocation larger than kAllocationFactor * input size +
// kAllocationSlack, i.e. a length field believed before it was checked against the input.
#pragma once

#include <cstddef>

#include "stagekit/core/value.h"

namespace stagekit::fuzz {

// A valid input can legitimately need more memory than its size in a single allocation (a list of
// N one-byte `none` nodes becomes a vector of N Values), but only by a bounded factor.
inline constexpr std::size_t kAllocationFactor = 64;
inline constexpr std::size_t kAllocationSlack = std::size_t{1} << 20;

// Installs the malloc hook; call once from LLVMFuzzerInitialize. `target` and `decoder` name the
// executable and the function under test in the hook's report.
void install_allocation_hook(const char* target, const char* decoder);

// Bounds single allocations by the input's size from construction until release() or destruction.
class AllocationBound {
 public:
  explicit AllocationBound(std::size_t input_bytes);
  ~AllocationBound();
  AllocationBound(const AllocationBound&) = delete;
  AllocationBound& operator=(const AllocationBound&) = delete;
  void release() noexcept;
};

// Aborts with `what` and a stack trace (a crash for libFuzzer).
[[noreturn]] void fail(const char* what);

// Visits every node once (shared nodes once, without recursion) and fails unless every tensor's
// layout lies inside its CPU storage and no leaf is opaque. With `read_bytes` the first and the
// last byte each tensor addresses are read, so that ASan reports a storage whose memory is shorter
// than it says; without, storages may be placeholders that hold no memory.
void check_tree(const Value& root, bool read_bytes = true);

}  // namespace stagekit::fuzz
