// ignores_pinning.cpp — BROKEN: page-locking. pin_memory is ignored: buffers are pageable (or
// shared, as asked) but never page-locked.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"

namespace stagekit_example {
namespace {

class IgnoresPinning final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    return Storage::allocate_with(host_allocator(host_memory_kind(false, config_.share_memory)), nbytes);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<IgnoresPinning>("example-broken-ignores-pinning");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
