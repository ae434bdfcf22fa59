// drops_default_factory.cpp — BROKEN: a defaultdict staged without its default_factory.
// Dict subclasses are rebuilt as an empty instance of their class, then filled, as Python code that
// rebuilds them with type(d)() does: an OrderedDict comes out right, but a defaultdict loses its
// factory, so a missing key of the staged dict raises KeyError where the source's made an entry
// (torch.optim keeps its per-parameter state in a defaultdict(dict)).
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class DropsDefaultFactory final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value rebuild_dict(const Dict& source, std::vector<Value> staged_values) override {
    Value staged = MinimalStager::rebuild_dict(source, std::move(staged_values));
    staged.as_dict().set_default_factory("");  // the flaw
    return staged;
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<DropsDefaultFactory>("example-broken-drops-default-factory");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
