// A plugin whose build tag claims another compiler and stagekit version: the runner must refuse it,
// naming both differing fields, without calling create().
#include <cstdlib>

#include "stagekit/conformance/plugin.h"

extern "C" __attribute__((visibility("default"))) const stagekit_plugin* stagekit_conformance_plugin(void) {
  static const stagekit_plugin descriptor = {
      STAGEKIT_PLUGIN_ABI_MAJOR, STAGEKIT_PLUGIN_ABI_MINOR,
      "stagekit=0.0.1;compiler=othercc-99;stdlib=" STAGEKIT_PLUGIN_STDLIB ";cxx11_abi=" STAGEKIT_PLUGIN_CXX11_ABI,
      [](stagekit_plugin_implementation**, char*, size_t) -> int { std::abort(); },  // must never be called
      [](stagekit_plugin_implementation*) { std::abort(); }};
  return &descriptor;
}
