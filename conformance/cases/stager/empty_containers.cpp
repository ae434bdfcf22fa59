// Empty containers, as real state dicts hold them (an optimizer's `state` before its first step, a
// module without buffers, an empty param_groups list, an OrderedDict of extra state with nothing in
// it): each is staged as a new, distinct empty container of the same type, at its key, and an empty
// top-level dict stages as a new empty dict. Upstream's deep copy keeps every one of them.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

Value state_dict_with_empties(Device dev) {
  Value ordered = Value::dict({});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  return Value::dict({
      {"model",
       Value::dict({{"weight", Tensor::random({4, 4}, DType::float32, 120, dev)}, {"buffers", Value::dict({})}})},
      {"optimizer", Value::dict({{"state", Value::dict({})}, {"param_groups", Value::list({})}})},
      {"extra_state", ordered},
      {"args", Value::tuple({})},
      {"tags", Value::set({})},
      {"frozen_tags", Value::set({}, /*frozen=*/true)},
      {"marker", Value::object("stagekit_cases.Marker", {}, /*frozen=*/false)},
      {"nested", Value::list({Value::dict({}), Value::list({}), Value::dict({{"inner", Value::list({})}})})},
  });
}

void empty_containers_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Value source = state_dict_with_empties(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg));
  // Kinds, types, keys, identity (each empty container its own new node) and memory, exactly.
  const Value staged = stage_or_fail(ctx, *stager, source, "empty containers");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg)));

  const Value empty = Value::dict({});
  const Value staged_empty = stage_or_fail(ctx, *stager, empty, "an empty dict");
  ctx.check(staged_empty.kind() == Value::Kind::dict && staged_empty.as_dict().size() == 0, "<root>", "empty dict",
            fmt::format("an empty dict staged as a {} holding {} item(s)", value_kind_name(staged_empty.kind()),
                        staged_empty.kind() == Value::Kind::dict ? staged_empty.as_dict().size() : 0));
  ctx.check(staged_empty.identity() != empty.identity(), "<root>", "deep copy",
            "an empty dict staged as the caller's own dict: a key the caller adds shows in the staged one");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(empty_containers) {
  add_matrix(registry, "empty_containers",
             "Empty dicts, lists, tuples, sets, an empty OrderedDict and an object without fields (an optimizer's "
             "state before its first step, a module without buffers) stage as new, distinct empty containers of "
             "the same types at their keys; an empty top-level dict stages as a new empty dict",
             "strict", Profile::strict, kBothSources, kFourConfigs, empty_containers_case);
}

}  // namespace stagekit::conformance
