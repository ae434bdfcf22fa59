// writes_into_sources.cpp — BROKEN: the sources are left as they were. Floating-point sources are
// "cleaned" in place before they are copied: every NaN in the caller's tensors becomes the canonical
// quiet NaN and -0.0 becomes +0.0. The staged dict then equals the sources byte for byte, so a check
// that compares the two after staging passes; the caller's state dict is no longer what it was.
#include <cmath>
#include <limits>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class WritesIntoSources final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    if (source.storage().defined() && source.device().is_cpu() &&
        dtype_category(source.dtype()) == DTypeCategory::floating) {
      clean(source.storage(), source.dtype());
    }
    return MinimalStager::stage_tensor(source);
  }

 private:
  // Every element of the source storage, read as `dtype` (the views of one storage share their dtype here).
  static void clean(const Storage& storage, DType dtype) {
    const std::size_t item = element_size(dtype);
    auto* bytes = static_cast<std::byte*>(storage.data());
    for (std::size_t at = 0; bytes != nullptr && at + item <= storage.nbytes(); at += item) {
      const std::span<std::byte> element(bytes + at, item);
      const double value = decode_element(dtype, element);
      if (std::isnan(value)) encode_element(dtype, std::numeric_limits<double>::quiet_NaN(), element);
      if (value == 0.0) encode_element(dtype, 0.0, element);
    }
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<WritesIntoSources>("example-broken-writes-into-sources");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
