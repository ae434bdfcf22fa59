// shallow_copy.cpp — BROKEN: deep copy of CPU sources. A CPU tensor is checked and then returned as it
// is (the source tensor object, its storage and attributes), so the "staged" state dict aliases its
// source: it changes with it, is never pinned or shared, and allocates nothing.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ShallowCopy final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    check_tensor(source);
    return source;
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ShallowCopy>("example-broken-shallow-copy");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
