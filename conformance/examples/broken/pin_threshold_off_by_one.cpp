// pin_threshold_off_by_one.cpp — BROKEN: the pinning threshold read as "more than" instead of "at least".
// A storage is page-locked when it holds more than pin_memory_min_bytes bytes, so one of exactly
// that size stays pageable (with the default of 5 bytes: a 5-byte storage; with 4096: one page).
// Every other size is pinned or not as it should be.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"

namespace stagekit_example {
namespace {

class PinThresholdOffByOne final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    const bool pin = config_.pin_memory && nbytes > 0 && nbytes > config_.pin_memory_min_bytes;  // the flaw
    return Storage::allocate_with(host_allocator(host_memory_kind(pin, config_.share_memory)), nbytes);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<PinThresholdOffByOne>("example-broken-pin-threshold-off-by-one");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
