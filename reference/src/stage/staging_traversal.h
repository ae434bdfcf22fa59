// Internal: one stage's walk over the source tree. It validates every node, builds the staged tree,
// resolves each distinct source storage to a buffer (cache hit, or a new allocation recorded in
// new_entries()), and lists the copies to run. It commits nothing: if it throws, dropping it frees
// every buffer it allocated.
#pragma once

#include <cstddef>
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
  StagingTraversal(const StagerOptions& options, const StorageCache& cache, TraversalSizes hint, bool keep_alive);

  // Holds the cache's lock while it walks the tree.
  Value run(const Value& root);

  [[nodiscard]] std::vector<std::pair<Storage, Storage>>& new_entries() noexcept { return new_entries_; }
  [[nodiscard]] CopyPlan& plan() noexcept { return plan_; }
  [[nodiscard]] TraversalSizes sizes() const noexcept { return {memo_.size(), plan_.host.size() + plan_.device.size()}; }

 private:
  Value stage_value(const Value& v);
  Value stage_node(const Value& v, bool unique);
  Value stage_tensor(const Tensor& t);
  std::vector<Value> stage_items(const std::vector<Value>& items);
  Storage stage_storage(const Storage& source);
  Storage allocate_buffer(std::size_t nbytes);
  void validate_tensor(const Tensor& t) const;
  void enter(const void* node);
  void leave(const void* node) noexcept { active_.erase(node); }

  const StagerOptions& options_;
  const StorageCache& cache_;
  const StorageCache::Reader* cached_ = nullptr;  // valid during run()
  bool keep_alive_;
  PathStack path_;
  absl::flat_hash_map<const void*, Value> memo_;            // source node -> staged node
  absl::flat_hash_map<const void*, std::size_t> active_;    // containers being staged -> path depth
  absl::flat_hash_map<const void*, Storage> storage_memo_;  // source storage -> buffer (this call)
  std::vector<std::pair<Storage, Storage>> new_entries_;    // (source, new buffer) to cache
  CopyPlan plan_;
};

}  // namespace stagekit::detail
