// bounded_cache.cpp — BROKEN: a cache of at most 1024 buffers. A stage that needs more evicts the
// oldest entries of live sources (least recently added first), so a model of many tensors gets
// part of its buffers allocated, page-locked and shared again at every stage, and earlier results
// no longer alias the buffers later stages fill. A cache entry must go only with its source or at
// close() (spec B.1.3). Small state dicts are staged as they should be.
#include <algorithm>
#include <deque>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

constexpr std::size_t kCapacity = 1024;

class BoundedCache final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

  Value stage(const Value& state_dict) override {
    Value staged = MinimalStager::stage(state_dict);
    for (const auto& [key, entry] : cache_) {
      if (std::find(order_.begin(), order_.end(), key) == order_.end()) order_.push_back(key);
    }
    while (cache_.size() > kCapacity && !order_.empty()) {  // the flaw
      cache_.erase(order_.front());
      order_.pop_front();
    }
    return staged;
  }
  void close() override {
    MinimalStager::close();
    order_.clear();
  }

 private:
  std::deque<const void*> order_;  // cache keys, oldest first
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<BoundedCache>("example-broken-bounded-cache");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
