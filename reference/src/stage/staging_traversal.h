// Internal: one stage's walk over the source tree. It validates every node, builds the staged tree,
// resolves each distinct source storage to a buffer (cache hit, or a new allocation recorded in
// new_entries()), and lists the copies to run. It commits nothing: if it throws, dropping it frees
// every buffer it allocated, and no cached buffer has been written.
//
// Note [Independent leaves]: a tensor that is the only handle to its tensor object and has no
// attributes cannot be reached twice. Its storage may be shared, but a cached storage needs no memo
// (the first tensor to reach its cache entry claims the copy), and an uncached one with a single
// handle belongs to it alone. The tensors of a container that qualify are staged as a batch, split
// across the engine's threads when there are many: walking many small tensors is bound by memory
// latency, not bandwidth. Leaves whose uncached storage is shared, and every other item, are then
// staged by the sequential walk, in order.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "copy_engine.h"
#include "stagekit/core/state_path.h"
#include "stagekit/core/value.h"
#include "stagekit/stage/state_dict_stager.h"
#include "storage_cache.h"

namespace stagekit::detail {

// Sizes seen by the previous stage of a stager, so that the next one allocates its maps once.
struct TraversalSizes {
  std::size_t nodes = 0;
  std::size_t storages = 0;
};

class StagingTraversal {
 public:
  // `keep_alive`: the plan holds references to every source and buffer (non-blocking stages).
  StagingTraversal(const StagerOptions& options, const StorageCache& cache, CopyEngine& engine, TraversalSizes hint,
                   bool keep_alive);

  // Holds the cache's lock while it walks the tree.
  Value run(const Value& root);

  [[nodiscard]] std::vector<std::pair<Storage, Storage>>& new_entries() noexcept { return new_entries_; }
  [[nodiscard]] CopyPlan& plan() noexcept { return plan_; }
  [[nodiscard]] TraversalSizes sizes() const noexcept {
    return {memo_.size(), plan_.host.size() + plan_.device.size()};
  }

 private:
  struct LeafOutput;

  Value stage_value(const Value& v);
  Value stage_node(const Value& v, bool unique);
  Value stage_tensor(const Tensor& t);
  // Stages the items of a container; `path_of(i)` pushes the path segment of item i.
  template <class Items, class PathOf>
  std::vector<Value> stage_items(const Items& items, PathOf path_of);
  // Stages the independent leaves among n items across the engine's threads; returns the other
  // items, in order, for the sequential walk.
  std::vector<std::size_t> stage_leaves_in_parallel(std::size_t n, const std::function<const Value&(std::size_t)>& item,
                                                    std::vector<Value>& values,
                                                    const std::function<void(std::size_t)>& push_path);
  bool stage_independent_leaf(const Tensor& t, Value& slot, LeafOutput& out) const;
  Storage stage_storage(const Storage& source);
  Storage allocate_buffer(std::size_t nbytes) const;
  void check_tensor(const Tensor& t) const;  // throws InvalidArgument / Unsupported without a path
  void enter(const void* node);
  void leave(const void* node) noexcept { active_.erase(node); }

  const StagerOptions& options_;
  const StorageCache& cache_;
  CopyEngine& engine_;
  const StorageCache::Reader* cached_ = nullptr;  // valid during run()
  bool keep_alive_;
  PathStack path_;
  absl::flat_hash_map<const void*, Value> memo_;            // source node -> staged node
  absl::flat_hash_map<const void*, std::size_t> active_;    // nodes being staged -> path depth
  absl::flat_hash_map<const void*, Storage> storage_memo_;  // shared source storage -> buffer
  std::vector<std::pair<Storage, Storage>> new_entries_;    // (source, new buffer) to cache
  CopyPlan plan_;
};

}  // namespace stagekit::detail
