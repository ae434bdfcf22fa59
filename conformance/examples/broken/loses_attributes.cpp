// loses_attributes.cpp — BROKEN: tensor attributes. Staged tensors carry no attributes.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class LosesAttributes final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  void copy_attributes(const Tensor&, Tensor&) override {}
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<LosesAttributes>("example-broken-loses-attributes");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
