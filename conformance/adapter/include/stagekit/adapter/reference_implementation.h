// stagekit/adapter/reference_implementation.h — the reference implementation (StateDictStager,
// ReplicationStager and the state-dict utilities of stagekit/dist) seen through the adapter
// interface, like any other implementation under test (target stagekit::reference_adapter).
//
// Tools reach it through the implementation loader (spec "reference", or the plugin
// libstagekit_reference_plugin.so built from the same code); tests link it to run the cases in
// process. The implementation is stateless: its make_* functions may be called from several
// threads at once.
#pragma once

#include <memory>
#include <string_view>

#include "stagekit/conformance/implementation.h"

namespace stagekit::conformance {

// Implementation::name() of the reference; its version() is STAGEKIT_VERSION.
inline constexpr std::string_view kReferenceImplementationName = "stagekit-reference";

[[nodiscard]] std::unique_ptr<Implementation> make_reference_implementation();

}  // namespace stagekit::conformance
