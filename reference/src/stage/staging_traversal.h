// Internal: one stage's walk over the source tree. It validates every node, builds the staged tree,
// resolves each distinct source storage to a buffer (cache hit, or a new allocation recorded in
// new_entries()), and lists the copies to run. It commits nothing: if it throws, dropping it frees
// every buffer it allocated.
#pragma once

#include <cstddef>
#include <unordered_map>
#include <utility>
#include <vector>

#include "copy_engine.h"
#include "stagekit/core/state_path.h"
#include "stagekit/core/value.h"
#include "stagekit/stage/state_dict_stager.h"
#include "storage_cache.h"

namespace stagekit::detail {

class StagingTraversal {
 public:
  StagingTraversal(const StagerOptions& options, const StorageCache& cache) : options_(options), cache_(cache) {}

  Value run(const Value& root);

  [[nodiscard]] std::vector<std::pair<Storage, Storage>>& new_entries() noexcept { return new_entries_; }
  [[nodiscard]] std::vector<CopyJob>& jobs() noexcept { return jobs_; }

 private:
  Value stage_value(const Value& v);
  Value stage_node(const Value& v);
  Value stage_tensor(const Tensor& t);
  std::vector<Value> stage_items(const std::vector<Value>& items);
  Storage stage_storage(const Storage& source);
  Storage allocate_buffer(std::size_t nbytes);
  void validate_tensor(const Tensor& t) const;
  void enter(const void* node);
  void leave(const void* node) noexcept { active_.erase(node); }

  const StagerOptions& options_;
  const StorageCache& cache_;
  PathStack path_;
  std::unordered_map<const void*, Value> memo_;             // source node -> staged node
  std::unordered_map<const void*, std::size_t> active_;     // nodes being staged -> path depth
  std::unordered_map<const void*, Storage> storage_memo_;   // source storage -> buffer (this call)
  std::vector<std::pair<Storage, Storage>> new_entries_;    // (source, new buffer) to cache
  std::vector<CopyJob> jobs_;
};

}  // namespace stagekit::detail
