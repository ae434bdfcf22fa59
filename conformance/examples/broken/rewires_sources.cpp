// rewires_sources.cpp — BROKEN: the caller's state dict is left as it was. After staging, the
// stager points the caller's dict at the staged copies ("the training loop may keep the snapshot,
// and the original can be freed"): every top-level tensor entry of the caller's dict is replaced by
// its staged tensor. A Value's dict is a shared handle, so `const Value&` does not stop it. The
// staged dict is exact and no source storage is written. Mirrors the Python route's
// stagekit_torch_examples.broken.rewires_sources.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class RewiresSources final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

  Value stage(const Value& state_dict) override {
    Value staged = MinimalStager::stage(state_dict);
    if (state_dict.kind() != Value::Kind::dict || staged.kind() != Value::Kind::dict) return staged;
    Dict& caller = state_dict.as_dict();
    for (const auto& [key, value] : staged.as_dict().entries()) {
      if (value.is_tensor() && caller.contains(key)) caller.set(key, value);
    }
    return staged;
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<RewiresSources>("example-broken-rewires-sources");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
