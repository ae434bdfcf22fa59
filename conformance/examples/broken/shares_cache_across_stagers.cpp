// shares_cache_across_stagers.cpp — BROKEN: one buffer pool for every stager of the process.
// Each staged buffer is also entered in a process-wide pool under its source storage (weakly: the
// pool keeps nothing alive), and a stager that has no buffer of its own for a source takes the pool's
// (meant to save memory when several checkpointers stage the same model). A second stager staging
// the same sources then copies into the first one's buffers, under the results the first handed out.
#include <mutex>
#include <unordered_map>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

struct PoolEntry {
  WeakStorage source;
  WeakStorage staged;
};

std::mutex pool_mutex;
std::unordered_map<const void*, PoolEntry>& pool() {
  static std::unordered_map<const void*, PoolEntry> entries;
  return entries;
}

class SharesCacheAcrossStagers final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage stage_storage(const Tensor& source) override {
    Storage staged = MinimalStager::stage_storage(source);
    const std::lock_guard lock(pool_mutex);
    pool()[cache_key(source)] = PoolEntry{source.storage().weak(), staged.weak()};
    return staged;
  }
  Storage find_cached(const void* key, const Storage& source) override {
    if (Storage own = MinimalStager::find_cached(key, source); own.defined()) return own;
    const std::lock_guard lock(pool_mutex);
    const auto it = pool().find(key);
    if (it == pool().end() || !it->second.source.lock().is_alias_of(source)) return {};
    Storage pooled = it->second.staged.lock();  // the flaw: another stager's buffer
    return pooled.defined() && pooled.nbytes() == source.nbytes() ? pooled : Storage{};
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<SharesCacheAcrossStagers>("example-broken-shares-cache-across-stagers");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
