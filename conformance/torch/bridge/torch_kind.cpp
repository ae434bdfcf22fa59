#include "stagekit/torch/torch_kind.h"

#include "python_runtime.h"
#include "torch_implementation.h"
#include "torch_spec.h"

namespace stagekit::conformance {

ImplementationSource load_torch(const std::string& spec) {
  ImplementationSource source = torch_source(spec);
  if (!source.refusal.empty()) return source;
  const std::string target = spec == "torch" ? std::string() : spec.substr(6);
  source.factory = [target] { return std::make_unique<torch_bridge::TorchImplementation>(target); };
  source.fork_server = torch_bridge::warm_python_fork_server();
  return source;
}

}  // namespace stagekit::conformance
