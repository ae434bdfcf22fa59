// aliases_ready_sources.cpp — BROKEN: a source already in the memory asked for is its own copy.
// When pin_memory or share_memory is asked for and a CPU source storage already is page-locked or
// shared as asked, the stager hands that storage back as the staged one instead of copying it, as a
// stager built on `tensor.pin_memory()` or `tensor.share_memory_()` does (both return the tensor
// itself when it already is pinned or shared). The staged dict then follows the live model. Every
// source the other cases make is ordinary pageable memory, so only sources made pinned or shared
// beforehand show it.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class AliasesReadySources final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage stage_storage(const Tensor& source) override {
    const Storage& storage = source.storage();
    if (storage.defined() && storage.nbytes() > 0 && storage.device().is_cpu() && already_as_asked(storage)) {
      return storage;  // the flaw: no copy
    }
    return MinimalStager::stage_storage(source);
  }

 private:
  bool already_as_asked(const Storage& storage) const {
    if (!config_.pin_memory && !config_.share_memory) return false;
    const MemoryKind kind = storage.memory_kind();
    return (!config_.pin_memory || is_pinned_kind(kind)) && (!config_.share_memory || is_shared_kind(kind));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<AliasesReadySources>("example-broken-aliases-ready-sources");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
