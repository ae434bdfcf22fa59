// plain_containers.cpp — BROKEN: container types. Namedtuples are rebuilt as plain tuples and dict
// subclasses (OrderedDict, defaultdict, ...) as plain dicts, as Python code that rebuilds containers
// with tuple(...) and dict(...) does: the items are right, the types are lost.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class PlainContainers final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value rebuild_tuple(const Tuple& /*source*/, std::vector<Value> staged_items) override {
    return Value::tuple(std::move(staged_items));
  }
  Value rebuild_dict(const Dict& source, std::vector<Value> staged_values) override {
    auto dict = std::make_shared<Dict>();
    for (std::size_t i = 0; i < staged_values.size(); ++i) dict->set(source.entries()[i].first, staged_values[i]);
    return Value(std::move(dict));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<PlainContainers>("example-broken-plain-containers");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
