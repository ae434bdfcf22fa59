// forgets_offsets.cpp — BROKEN: storage offsets. Views are rebuilt at offset 0 of their staged
// buffer, so a slice, row or narrowed view reads the wrong elements.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ForgetsOffsets final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Tensor rebuild_view(const Tensor& source, const Storage& staged) override {
    return Tensor::from_storage(staged, source.dtype(), IntList(source.sizes().begin(), source.sizes().end()),
                                IntList(source.strides().begin(), source.strides().end()), /*storage_offset=*/0);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ForgetsOffsets>("example-broken-forgets-offsets");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
