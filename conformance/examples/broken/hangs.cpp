// hangs.cpp — BROKEN: liveness. Staging a float8_e5m2 tensor never returns (it sleeps forever);
// every other tensor stages correctly.
#include <chrono>
#include <thread>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class Hangs final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    while (source.dtype() == DType::float8_e5m2) std::this_thread::sleep_for(std::chrono::hours(1));
    return MinimalStager::stage_tensor(source);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<Hangs>("example-broken-hangs");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
