#include "stagekit/torch/torch_kind.h"

#include "python_runtime.h"
#include "torch_implementation.h"

namespace stagekit::conformance {

bool claims_torch(std::string_view spec) { return spec == "torch" || spec.starts_with("torch:"); }

ImplementationSource load_torch(const std::string& spec) {
  ImplementationSource source;
  source.spec = spec;
  source.kind = "torch";
  const std::string target = spec == "torch" ? std::string() : spec.substr(6);
  if (spec != "torch" && target.find(':') == std::string::npos) {
    source.refusal = "'" + spec + "' is not of the form torch:PACKAGE.MODULE:FACTORY (or torch alone)";
    return source;
  }
  source.factory = [target] { return std::make_unique<torch_bridge::TorchImplementation>(target); };
  source.fork_server = torch_bridge::warm_python_fork_server();
  return source;
}

}  // namespace stagekit::conformance
