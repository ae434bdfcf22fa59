// The torch kind in a stagekit built without Python: it claims the specs and refuses them.
#include "stagekit/torch/torch_kind.h"

namespace stagekit::conformance {

bool claims_torch(std::string_view spec) { return spec == "torch" || spec.starts_with("torch:"); }

ImplementationSource load_torch(const std::string& spec) {
  ImplementationSource source;
  source.spec = spec;
  source.kind = "torch";
  source.refusal =
      "this stagekit was built without the torch route (STAGEKIT_WITH_PYTHON=OFF, or no python3-dev and "
      "pybind11-dev when it was configured): rebuild with them to test a Python stager";
  return source;
}

}  // namespace stagekit::conformance
