// ignores_sharing.cpp — BROKEN: shared memory. share_memory is ignored: buffers are private
// process memory (pinned as asked), which no other process can map.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"

namespace stagekit_example {
namespace {

class IgnoresSharing final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    const bool pin = config_.pin_memory && nbytes > 0 && nbytes >= config_.pin_memory_min_bytes;
    return Storage::allocate_with(host_allocator(host_memory_kind(pin, false)), nbytes);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<IgnoresSharing>("example-broken-ignores-sharing");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
