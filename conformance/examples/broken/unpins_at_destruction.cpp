// unpins_at_destruction.cpp — BROKEN: the stager's end unpins every buffer it pinned.
// The stager remembers each buffer it page-locked and, in its destructor, unlocks those still alive
// (as a stager that registers its buffers with the CUDA driver and unregisters them all when it goes
// would). Results still held by the caller then sit on pageable memory: a checkpoint still being
// written when its stager is dropped is no longer pinned.
#include <sys/mman.h>

#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class UnpinsAtDestruction final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;
  ~UnpinsAtDestruction() override {
    for (const WeakStorage& weak : pinned_) {
      if (const Storage buffer = weak.lock(); buffer.defined()) munlock(buffer.data(), buffer.nbytes());  // the flaw
    }
  }
  UnpinsAtDestruction(const UnpinsAtDestruction&) = delete;
  UnpinsAtDestruction& operator=(const UnpinsAtDestruction&) = delete;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    Storage buffer = MinimalStager::allocate_buffer(nbytes);
    if (config_.pin_memory && nbytes > 0 && nbytes >= config_.pin_memory_min_bytes) pinned_.push_back(buffer.weak());
    return buffer;
  }

 private:
  std::vector<WeakStorage> pinned_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<UnpinsAtDestruction>("example-broken-unpins-at-destruction");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
