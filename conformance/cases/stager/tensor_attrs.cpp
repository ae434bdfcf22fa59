// A.1.3 test_tensor_attrs: attributes set on tensor objects survive staging.
#include <fmt/format.h>

#include <cstdint>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void check_int_attr(CaseContext& ctx, const Tensor& t, std::string_view path, const char* name, std::int64_t want) {
  if (!ctx.check(t.has_attr(name), path, "attributes", fmt::format("attribute '{}' is missing", name))) return;
  const Value v = t.attr(name);
  ctx.check(v.kind() == Value::Kind::integer && v.as_int() == want, path, "attributes",
            fmt::format("attribute '{}' should be {}", name, want));
}

void tensor_attrs_case(CaseContext& ctx, Source src, PinShare cfg) {
  ViewsInput in = make_views_input(source_device(src), 3);
  in.tensor1.set_attr("a", 42);
  in.tensor1.set_attr("b", 43);
  in.tensor3.set_attr("c", 44);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, in.state_dict, "attrs");
  check_int_attr(ctx, staged["tensor1"].as_tensor(), "tensor1", "a", 42);
  check_int_attr(ctx, staged["tensor1"].as_tensor(), "tensor1", "b", 43);
  check_int_attr(ctx, staged["recursive"]["tensor3"].as_tensor(), "recursive.tensor3", "c", 44);
}

// Spec C.1.11, B.1.5: attributes are carried wherever a tensor sits, not only under a dict: in a
// list, a tuple, a namedtuple, an object, a __slots__ object, a nested dict and another tensor's
// attribute; cold and into cached buffers.
void tensor_attrs_everywhere_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const auto tagged = [dev](std::uint64_t seed) {
    Tensor t = Tensor::random({3}, DType::float32, seed, dev);
    t.set_attr("tag", Value(static_cast<std::int64_t>(seed)));
    return t;
  };
  Tensor outer = tagged(207);
  outer.set_attr("inner", tagged(208));
  const Value sd = Value::dict({
      {"in_list", Value::list({tagged(201)})},
      {"in_tuple", Value::tuple({tagged(202), 0})},
      {"in_named", Value::named_tuple("stagekit_cases.Pair", {{"weight", tagged(203)}, {"step", 2}})},
      {"in_object", Value::object("Holder", {{"t", tagged(204)}})},
      {"in_slots", Value::slots_object("stagekit_cases.Slotted", {{"tensor", tagged(205)}, {"count", 1}})},
      {"nested", Value::dict({{"deeper", Value::dict({{"t", tagged(206)}})}})},
      {"outer", outer},
  });
  auto stager = ctx.make_stager(stager_config(cfg));
  for (const char* when : {"cold", "warm"}) {
    const Value staged = stage_or_fail(ctx, *stager, sd, when);
    for (Failure f : verify_staged(sd, staged, memory_expectation(cfg))) {
      f.detail = fmt::format("{} stage: {}", when, f.detail);
      ctx.add_failures({f});
    }
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(tensor_attrs) {
  add_matrix(registry, "tensor_attrs_everywhere",
             "Attributes of tensors in a list, a tuple, a namedtuple, an object, a __slots__ object, a nested dict "
             "and another tensor's attribute are carried to the staged tensors, cold and warm (spec C.1.11)",
             "strict", Profile::strict, kBothSources, kFourConfigs, tensor_attrs_everywhere_case);
  static constexpr PinShare kPinnedShared[] = {{true, true}};
  add_matrix(registry, "tensor_attrs", "Attributes set on tensor objects are carried to the staged tensors",
             "TestStateDictStager.test_tensor_attrs", Profile::upstream, kBothSources, kPinnedShared,
             tensor_attrs_case);
}

}  // namespace stagekit::conformance
