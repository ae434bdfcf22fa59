// The torch kind in a stagekit built without Python: it claims the specs and refuses them.
#include "torch_spec.h"

namespace stagekit::conformance {

ImplementationSource load_torch(const std::string& spec) {
  ImplementationSource source = torch_source(spec);
  if (!source.refusal.empty()) return source;
  source.refusal =
      "this stagekit was built without the torch route (STAGEKIT_WITH_PYTHON=OFF, or no python3-dev and "
      "pybind11-dev when it was configured): rebuild with them to test a Python stager";
  return source;
}

}  // namespace stagekit::conformance
