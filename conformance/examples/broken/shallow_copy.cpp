// shallow_copy.cpp — BROKEN: deep copy of CPU sources. CPU tensors are returned as they are (the
// source tensor objects and storages), so the "staged" state dict changes with its source.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ShallowCopy final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override { return source; }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ShallowCopy>("example-broken-shallow-copy");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
