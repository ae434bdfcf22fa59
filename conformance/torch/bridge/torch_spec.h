// torch_spec.h (internal to the torch kind) — the part of the torch kind every build has, with or
// without Python: the source of a torch spec before it is loaded (spec and kind set, and a refusal
// when the spec is not of the form torch[:PACKAGE.MODULE:FACTORY]).
#pragma once

#include <string>

#include "stagekit/torch/torch_kind.h"

namespace stagekit::conformance {

[[nodiscard]] ImplementationSource torch_source(const std::string& spec);

}  // namespace stagekit::conformance
