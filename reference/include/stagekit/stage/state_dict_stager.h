// stagekit/stage/state_dict_stager.h — StateDictStager: copies a state dict into CPU memory.
//
// stage(sd) returns a new tree with the same structure in which every tensor lives on the CPU in
// memory of the configured kind (pageable, pinned, shared, pinned+shared):
//   * one staged buffer per distinct source storage; views keep sharing it with their own sizes,
//     strides and storage offset (sharing is preserved in both directions);
//   * the same node reached twice (tensor, list, dict, object, ...) stages to one node; cycles are
//     rejected with an InvalidArgument naming the path;
//   * tensor attributes, objects (frozen too), containers and scalars are rebuilt; CPU sources are
//     still copied;
//   * buffers are cached per source storage: a later stage() of the same live storage copies into the
//     same buffer, so results returned earlier see the new values (they alias the cache). A cache entry
//     dies with its source storage; a source resized since the last stage gets a new buffer;
//   * buffers of at least pin_memory_min_bytes are page-locked when pin_memory is set; a zero-byte
//     storage never is.
// Staging is all-or-nothing: on error nothing is cached or half-staged, no buffer leaks, and the
// stager stays usable. close() waits for in-flight copies and drops every cached buffer (buffers
// still referenced by earlier results live on until those die); the stager stays usable after it.
// Calls on one stager are serialised; a new stage waits for the previous non-blocking one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "stagekit/core/value.h"

namespace stagekit {

struct StagerOptions {
  bool pin_memory = false;
  bool share_memory = false;
  std::size_t pin_memory_min_bytes = 5;
  // Host copy threads; 0 picks min(hardware threads, 8).
  std::size_t copy_threads = 0;
  // Host copies smaller than this in total stay on the calling thread.
  std::size_t parallel_copy_min_bytes = std::size_t{4} << 20;
};

struct StagerStats {
  std::size_t cached_storages = 0;
  std::uint64_t cached_bytes = 0;
  std::uint64_t pinned_bytes = 0;  // cached bytes that are page-locked
  std::uint64_t shared_bytes = 0;  // cached bytes in shared memory
};

namespace detail {
struct StageOperation;
}

// The result of a non-blocking stage. The staged tree is handed out only by wait(), once every copy
// is complete. Destroying an unwaited PendingStage waits (and drops any error).
class PendingStage {
 public:
  PendingStage() = default;
  explicit PendingStage(std::shared_ptr<detail::StageOperation> op) : op_(std::move(op)) {}
  PendingStage(PendingStage&&) noexcept = default;
  PendingStage& operator=(PendingStage&&) noexcept;
  ~PendingStage();

  // Blocks until the copies are done and returns the staged tree; rethrows a copy error.
  Value wait();
  [[nodiscard]] bool ready() const;
  [[nodiscard]] bool valid() const noexcept { return op_ != nullptr; }

 private:
  std::shared_ptr<detail::StageOperation> op_;
};

class StateDictStager {
 public:
  explicit StateDictStager(StagerOptions options = {});
  ~StateDictStager();
  StateDictStager(const StateDictStager&) = delete;
  StateDictStager& operator=(const StateDictStager&) = delete;

  // Blocking: returns once every copy is complete.
  Value stage(const Value& state_dict);
  // Non-blocking: the copies may still run when this returns; PendingStage::wait() hands out the tree.
  PendingStage stage_async(const Value& state_dict);
  void close();

  [[nodiscard]] StagerStats stats() const;
  [[nodiscard]] const StagerOptions& options() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace stagekit
