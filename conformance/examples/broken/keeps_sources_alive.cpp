// keeps_sources_alive.cpp — BROKEN: a source's life. Every source tensor it stages is kept in a list
// the stager owns, so no source storage ever dies while the stager lives: the caller's memory is
// never given back (a checkpoint of a model that replaces its tensors keeps every old one). Staged
// results are exact.
#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class KeepsSourcesAlive final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    kept_.push_back(source);
    return MinimalStager::stage_tensor(source);
  }

 private:
  std::vector<Tensor> kept_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<KeepsSourcesAlive>("example-broken-keeps-sources-alive");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
