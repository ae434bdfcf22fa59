// A.1.3 test_tensor_attrs: attributes set on tensor objects survive staging.
#include <fmt/format.h>

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

}  // namespace

STAGEKIT_CONFORMANCE_CASES(tensor_attrs) {
  static constexpr PinShare kPinnedShared[] = {{true, true}};
  add_matrix(registry, "tensor_attrs", "Attributes set on tensor objects are carried to the staged tensors",
             "TestStateDictStager.test_tensor_attrs", Profile::upstream, kBothSources, kPinnedShared,
             tensor_attrs_case);
}

}  // namespace stagekit::conformance
