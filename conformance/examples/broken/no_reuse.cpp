// no_reuse.cpp — BROKEN: buffer reuse. The cache is never consulted: every stage() allocates fresh
// buffers, so results of earlier stages are not overwritten and memory is not recycled.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class NoReuse final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage find_cached(const void*, const Storage&) override { return {}; }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<NoReuse>("example-broken-no-reuse");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
