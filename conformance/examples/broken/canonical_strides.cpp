// canonical_strides.cpp — BROKEN: a contiguous view rebuilt with the strides contiguity implies.
// A view that is contiguous is rebuilt with the strides a new contiguous tensor of its sizes would
// have, instead of its own. Contiguity ignores the strides of size-1 dimensions, so a view made by
// unsqueeze() or a transposed [1, n] view, contiguous with strides of its own on those dimensions,
// comes back with other strides; every other view keeps its strides.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class CanonicalStrides final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Tensor rebuild_view(const Tensor& source, const Storage& staged) override {
    if (!source.is_contiguous()) return MinimalStager::rebuild_view(source, staged);
    const IntList sizes(source.sizes().begin(), source.sizes().end());
    return Tensor::from_storage(staged, source.dtype(), sizes, Tensor::contiguous_strides(sizes),  // the flaw
                                source.storage_offset());
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<CanonicalStrides>("example-broken-canonical-strides");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
