// mishandles_empty.cpp — BROKEN: empty tensors. A tensor without elements is staged as a 1-D
// tensor of size 0, losing its shape ([0, 3] becomes [0]).
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class MishandlesEmpty final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Tensor rebuild_view(const Tensor& source, const Storage& staged) override {
    if (source.numel() == 0) return Tensor::from_storage(staged, source.dtype(), {0}, {1}, 0);
    return MinimalStager::rebuild_view(source, staged);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<MishandlesEmpty>("example-broken-mishandles-empty");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
