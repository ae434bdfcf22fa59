// thaws_frozen.cpp — BROKEN: frozen objects. Objects are rebuilt as not frozen, so a staged frozen
// dataclass accepts field assignments.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ThawsFrozen final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value rebuild_object(const Object& source, Fields staged_fields) override {
    return Value(
        std::make_shared<Object>(source.type_name(), std::move(staged_fields), /*frozen=*/false, source.slots()));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ThawsFrozen>("example-broken-thaws-frozen");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
