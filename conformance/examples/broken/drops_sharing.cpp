// drops_sharing.cpp — BROKEN: storage sharing. Buffers are keyed by tensor object instead of by
// storage, so views of one source storage get separate staged buffers (each a full copy).
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class DropsSharing final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  const void* cache_key(const Tensor& source) override { return source.identity(); }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<DropsSharing>("example-broken-drops-sharing");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
