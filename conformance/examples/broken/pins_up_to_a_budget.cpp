// pins_up_to_a_budget.cpp — BROKEN: page-locks at most 64 MiB a stager; a buffer past that budget
// stays pageable, without an error (a pinned pool that quietly falls back). Every buffer that
// pin_memory asks for must be page-locked, or the stage must fail with resource_exhausted.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"

namespace stagekit_example {
namespace {

constexpr std::size_t kBudget = std::size_t{64} << 20;

class PinsUpToABudget final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    bool pin = config_.pin_memory && nbytes > 0 && nbytes >= config_.pin_memory_min_bytes;
    if (pin && pinned_ + nbytes > kBudget) pin = false;  // the flaw
    if (pin) pinned_ += nbytes;
    return Storage::allocate_with(host_allocator(host_memory_kind(pin, config_.share_memory)), nbytes);
  }

 private:
  std::size_t pinned_ = 0;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<PinsUpToABudget>("example-broken-pins-up-to-a-budget");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
