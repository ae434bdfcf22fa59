// keyed_by_address.cpp — BROKEN: storage identity taken as the storage's address.
// The cache key is the address of the source storage's bytes (as a stager keyed by data_ptr() would
// have it), and a cached buffer of the right size is taken as the one for that storage. Every
// storage with bytes of its own is staged exactly; but zero-byte storages, which have no address of
// their own, all become one staged storage, and a new storage that the allocator places where a dead
// one was takes over the dead one's buffer.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class KeyedByAddress final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  const void* cache_key(const Tensor& source) override { return source.storage().data(); }  // the flaw

  // An address cannot tell whether the storage that had it still lives, so no entry is ever found dead
  // (it is marked with its own buffer, which the cache keeps alive).
  Storage stage_storage(const Tensor& source) override {
    Storage staged = MinimalStager::stage_storage(source);
    if (auto it = cache_.find(cache_key(source)); it != cache_.end()) it->second.source = staged.weak();
    return staged;
  }

  Storage find_cached(const void* key, const Storage& source) override {
    auto it = cache_.find(key);
    if (it == cache_.end() || it->second.staged.nbytes() != source.nbytes()) return {};
    return it->second.staged;  // whoever lives at that address now
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<KeyedByAddress>("example-broken-keyed-by-address");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
