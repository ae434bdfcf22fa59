// stale_restage.cpp — BROKEN: values on re-stage. A buffer is filled only the first time; a later
// stage() of the same source returns the reused buffer with the old values.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class StaleRestage final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  void copy_storage(const Storage& staged, const Storage& source) override {
    WeakStorage& filled = filled_[staged.identity()];
    if (filled.lock().is_alias_of(staged)) return;  // filled by an earlier stage(): left as it was
    filled = staged.weak();
    MinimalStager::copy_storage(staged, source);
  }

 private:
  std::unordered_map<const void*, WeakStorage> filled_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<StaleRestage>("example-broken-stale-restage");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
