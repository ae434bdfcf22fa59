// prunes_empty.cpp — BROKEN: empty containers are staged. A dict entry whose value is an empty
// container (dict, list, tuple, set) is left out of the staged dict, as code that skips "nothing to
// save" does: an optimizer's `state` before its first step, or a module without buffers, is gone
// from the checkpoint. Every other entry is staged exactly. Mirrors the Python route's
// stagekit_torch_examples.broken.prunes_empty.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

bool is_empty_container(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::dict: return v.as_dict().size() == 0;
    case Value::Kind::list: return v.as_list().items.empty();
    case Value::Kind::tuple: return v.as_tuple().items().empty();
    case Value::Kind::set: return v.as_set().items().empty();
    default: return false;
  }
}

class PrunesEmpty final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  bool keeps_entry(const Value& staged) override { return !is_empty_container(staged); }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<PrunesEmpty>("example-broken-prunes-empty");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
