// The reference implementation as a run-time plugin (libstagekit_reference_plugin.so): proves the
// plugin route end to end and lets vendors compare against the reference through the same door.
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/plugin.h"

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit::conformance::make_reference_implementation)
