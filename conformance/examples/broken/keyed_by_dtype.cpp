// keyed_by_dtype.cpp — BROKEN: storage identity taken as the storage and the dtype reading it.
// The cache key is the source storage together with the view's dtype (as a stager that keeps one
// typed buffer per dtype would have it), so a storage viewed as two dtypes — a float8 weight and its
// uint8 view, a float32 buffer and its int32 bit view — is staged twice, and the staged views no
// longer alias each other. Every storage read through a single dtype is staged exactly.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class KeyedByDtype final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  // A distinct key per (storage, dtype): the storage's identity, moved on by the dtype's number.
  const void* cache_key(const Tensor& source) override {
    return static_cast<const char*>(source.storage().identity()) + static_cast<int>(source.dtype());  // the flaw
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<KeyedByDtype>("example-broken-keyed-by-dtype");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
