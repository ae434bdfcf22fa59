// The reference implementation (stagekit::StateDictStager) seen through the adapter interface, like
// any other implementation under test.
#pragma once

#include <memory>

#include "stagekit/conformance/implementation.h"

namespace stagekit::conformance {

[[nodiscard]] std::unique_ptr<Implementation> make_reference_implementation();

}  // namespace stagekit::conformance
