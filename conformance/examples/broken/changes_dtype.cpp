// changes_dtype.cpp — BROKEN: dtypes. bfloat16 tensors are staged as float16 (same bytes, wrong
// dtype: every value reads differently).
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ChangesDtype final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Tensor rebuild_view(const Tensor& source, const Storage& staged) override {
    const DType dtype = source.dtype() == DType::bfloat16 ? DType::float16 : source.dtype();
    return Tensor::from_storage(staged, dtype, IntList(source.sizes().begin(), source.sizes().end()),
                                IntList(source.strides().begin(), source.strides().end()), source.storage_offset());
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ChangesDtype>("example-broken-changes-dtype");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
