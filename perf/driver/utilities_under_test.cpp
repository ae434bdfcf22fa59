// rank_utilities() and differs_from_full() (utilities_under_test.h).
#include "utilities_under_test.h"

#include <fmt/format.h>

#include <utility>

#include "dist_world.h"
#include "stagekit/core/error.h"

namespace stagekit::perf {

std::unique_ptr<conformance::StateDictUtilitiesUnderTest> rank_utilities(bool needs_dtensor) {
  conformance::Implementation& impl = *dist_context().implementation;
  const conformance::Capabilities caps = impl.capabilities();
  for (const auto& [declared, name] : {std::pair{caps.state_dict_utilities, "state_dict_utilities"},
                                       std::pair{caps.dtensor || !needs_dtensor, "dtensor"}}) {
    if (!declared) throw Unsupported(fmt::format("the implementation does not declare the {} capability", name));
  }
  auto utilities = impl.make_utilities();
  if (!utilities) {
    throw InternalError("make_utilities() returned nothing although the implementation declares state_dict_utilities");
  }
  return utilities;
}

std::string differs_from_full(const Value& dict, const std::vector<std::string>& names, const std::vector<Tensor>& full,
                              const std::string& where) {
  for (std::size_t i = 0; i < full.size(); ++i) {
    const Value* v = dict.as_dict().find(DictKey(names[i]));
    if (v == nullptr || !v->is_tensor()) return fmt::format("{}: not a tensor in the {}", names[i], where);
    if (!Tensor::equal(v->as_tensor(), full[i])) return fmt::format("{}: differs from the full tensor", names[i]);
  }
  return {};
}

}  // namespace stagekit::perf
