// canonicalises_floats.cpp — BROKEN: exact bytes. Floating-point elements are staged by value: every
// NaN becomes the canonical quiet NaN (its payload and sign lost) and -0.0 becomes +0.0. Values still
// compare equal; the bytes do not.
#include <cmath>
#include <limits>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class CanonicalisesFloats final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    Value staged = MinimalStager::stage_tensor(source);
    if (staged.is_tensor() && dtype_category(source.dtype()) == DTypeCategory::floating)
      canonicalise(staged.as_tensor().storage(), source.dtype());
    return staged;
  }

 private:
  // Every element of the buffer, read as `dtype` (the views of one storage share their dtype here).
  static void canonicalise(const Storage& buffer, DType dtype) {
    const std::size_t item = element_size(dtype);
    auto* bytes = static_cast<std::byte*>(buffer.data());
    for (std::size_t at = 0; bytes != nullptr && at + item <= buffer.nbytes(); at += item) {
      const std::span<std::byte> element(bytes + at, item);
      const double value = decode_element(dtype, element);
      if (std::isnan(value)) encode_element(dtype, std::numeric_limits<double>::quiet_NaN(), element);
      if (value == 0.0) encode_element(dtype, 0.0, element);
    }
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<CanonicalisesFloats>("example-broken-canonicalises-floats");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
