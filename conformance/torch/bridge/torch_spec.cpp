// What every build's torch kind shares: which specs it claims, and the source it starts from.
#include "torch_spec.h"

namespace stagekit::conformance {

bool claims_torch(std::string_view spec) { return spec == "torch" || spec.starts_with("torch:"); }

ImplementationSource torch_source(const std::string& spec) {
  ImplementationSource source;
  source.spec = spec;
  source.kind = "torch";
  if (spec != "torch" && spec.find(':', 6) == std::string::npos) {
    source.refusal = "'" + spec + "' is not of the form torch:PACKAGE.MODULE:FACTORY (or torch alone)";
  }
  return source;
}

}  // namespace stagekit::conformance
