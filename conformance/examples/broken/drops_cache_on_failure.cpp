// drops_cache_on_failure.cpp — BROKEN: a failed stage empties the whole cache.
// When stage() fails, the stager starts again from a clean state: it drops every cache entry, those
// of earlier stages too, not only the buffers the failed call made (as "reset on any error" code
// does). Nothing leaks, and every stage stages exactly; but after one bad state dict the next
// checkpoint allocates (and pins) every buffer anew, and the results staged before no longer alias
// the cache (entries go only with their source or at close(), spec B.1.3).
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class DropsCacheOnFailure final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

  Value stage(const Value& state_dict) override {
    try {
      return MinimalStager::stage(state_dict);
    } catch (...) {
      cache_.clear();  // the flaw: the entries of earlier stages go too
      throw;
    }
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<DropsCacheOnFailure>("example-broken-drops-cache-on-failure");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
