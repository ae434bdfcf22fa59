// minimal_plugin.cpp — the run-time route: libexample_minimal_plugin.so, loaded by
//   stagekit-conform --impl path/to/libexample_minimal_plugin.so
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_minimal_implementation)
