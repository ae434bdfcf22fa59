// A plugin speaking a future ABI major version: the runner must refuse it by version alone.
#include <cstdlib>

#include "stagekit/conformance/plugin.h"

extern "C" __attribute__((visibility("default"))) const stagekit_plugin* stagekit_conformance_plugin(void) {
  static const stagekit_plugin descriptor = {
      STAGEKIT_PLUGIN_ABI_MAJOR + 1, 0, "stagekit=9.0.0",
      [](stagekit_plugin_implementation**, char*, size_t) -> int { std::abort(); },
      [](stagekit_plugin_implementation*) { std::abort(); }};
  return &descriptor;
}
