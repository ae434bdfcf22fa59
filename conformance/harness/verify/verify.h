// Verifiers of staged state dicts, independent of what the implementation says about itself.
//
// compare_like_upstream() reproduces exactly what PyTorch's test helper `compare_state_dicts`
// asserts (spec A.0): structure, exact values, storage offsets, and storage sharing in one direction
// only (sources share => staged share), keyed by storage base address.
//
// verify_staged() checks the whole contract (profile `strict`): the same structure, kinds and key
// order; scalars bit-exact; node identity preserved in both directions and every node a fresh copy;
// for tensors the device (cpu), dtype, sizes, strides, storage offset, the logical bytes and the
// whole storage's bytes; attributes; a DTensor's spec and a ShardedTensor's metadata (global and
// per shard) unchanged over local tensors checked like any tensor; storage sharing in both
// directions by identity and by address
// ranges (distinct staged storages never overlap each other or a source); and the memory kind of
// every staged storage, probed from the OS (see stagekit/testing/memory_probe.h).
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "stagekit/conformance/case.h"
#include "stagekit/core/value.h"

namespace stagekit::conformance {

struct MemoryExpectation {
  bool pinned = false;
  bool shared = false;
  std::size_t pin_memory_min_bytes = 5;
  bool check_memory = true;  // probe pinned/shared properties of every staged storage
};

[[nodiscard]] std::vector<Failure> compare_like_upstream(const Value& source, const Value& staged,
                                                         Device source_device);

[[nodiscard]] std::vector<Failure> verify_staged(const Value& source, const Value& staged,
                                                 const MemoryExpectation& memory);

// Only the memory-kind checks of verify_staged() on every distinct storage reachable from `staged`.
[[nodiscard]] std::vector<Failure> verify_memory_kinds(const Value& staged, const MemoryExpectation& memory);

// Every tensor reachable from `root` (attributes included), each tensor object once, with its path.
struct TensorLeaf {
  std::string path;
  Tensor tensor;
};
[[nodiscard]] std::vector<TensorLeaf> tensor_leaves(const Value& root);

// A dict key as a failure names it, with its type: "'0' (str)" or "0 (int)".
[[nodiscard]] std::string describe_key(const DictKey& key);

// Where two tensors of the same dtype and shape differ: "2 of 6 elements differ; the first at
// [0, 2] is 1.5 instead of 3.25" (the dtypes, shapes or definedness instead when those differ).
[[nodiscard]] std::string describe_difference(const Tensor& actual, const Tensor& expected);

}  // namespace stagekit::conformance
