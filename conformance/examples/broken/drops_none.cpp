// drops_none.cpp — BROKEN: None is a value. A dict entry whose value is None is left out of the
// staged dict, as code that treats None as "not set" does: an optimizer's param_groups lose
// `foreach`, `fused` and the like, and loading the checkpoint sees other options. Every other entry
// is staged exactly. Mirrors the Python route's stagekit_torch_examples.broken.drops_none.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class DropsNone final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  bool keeps_entry(const Value& staged) override { return !staged.is_none(); }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<DropsNone>("example-broken-drops-none");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
