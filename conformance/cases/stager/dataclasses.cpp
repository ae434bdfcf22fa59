// A.1.7 test_dataclasses: objects (frozen ones too) are rebuilt around staged tensors; plus the
// strict check that a frozen object stays frozen and keeps its field order.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

struct DataclassInput {
  Value state_dict;
  Tensor tensor1, tensor2, tensor3, tensor4;
};

DataclassInput make_dataclass_input(Device dev) {
  DataclassInput in;
  in.tensor1 = Tensor::random({4, 4}, DType::float32, 21, dev);
  in.tensor2 = Tensor::random({8, 8}, DType::float32, 22, dev);
  in.tensor3 = Tensor::random({2, 6}, DType::float32, 23, dev);
  in.tensor4 = Tensor::random({3, 5}, DType::float32, 24, dev);
  const Value nested = Value::object("NestedTensorStruct", {{"tensor", in.tensor3}, {"value", 42}});
  const Value complex_dc = Value::object(
      "ComplexDataClass",
      {{"tensor", in.tensor1}, {"name", "test"}, {"values", Value::list({1.0, 2.0, 3.0})}, {"nested", nested}});
  const Value frozen_dc = Value::object("FrozenDataClass", {{"tensor", in.tensor4}, {"value", 100}}, /*frozen=*/true);
  in.state_dict =
      Value::dict({{"regular_tensor", in.tensor2}, {"complex_dataclass", complex_dc}, {"frozen_dataclass", frozen_dc}});
  return in;
}

void dataclasses_case(CaseContext& ctx, Source src, PinShare cfg) {
  DataclassInput in = make_dataclass_input(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, in.state_dict, "dataclasses");

  auto check_tensor = [&](const Value& v, const Tensor& src_t, std::string_view path) {
    const Tensor t = v.as_tensor();
    ctx.check(t.device().is_cpu(), path, "device", "staged tensor is on " + t.device().str());
    ctx.check(Tensor::equal(t, src_t), path, "values", "staged values differ from the source");
  };
  check_tensor(staged["regular_tensor"], in.tensor2, "regular_tensor");
  const Value complex_dc = staged["complex_dataclass"];
  ctx.check(complex_dc["name"].as_string() == "test", "complex_dataclass.name", "value", "expected 'test'");
  const Value values = complex_dc["values"];
  ctx.check(values.kind() == Value::Kind::list && values.as_list().items.size() == 3 &&
                values.at(0).as_double() == 1.0 && values.at(1).as_double() == 2.0 && values.at(2).as_double() == 3.0,
            "complex_dataclass.values", "value", "expected [1.0, 2.0, 3.0]");
  check_tensor(complex_dc["tensor"], in.tensor1, "complex_dataclass.tensor");
  const Value nested = complex_dc["nested"];
  ctx.check(nested["value"].as_int() == 42, "complex_dataclass.nested.value", "value", "expected 42");
  check_tensor(nested["tensor"], in.tensor3, "complex_dataclass.nested.tensor");
  const Value frozen_dc = staged["frozen_dataclass"];
  ctx.check(frozen_dc["value"].as_int() == 100, "frozen_dataclass.value", "value", "expected 100");
  check_tensor(frozen_dc["tensor"], in.tensor4, "frozen_dataclass.tensor");

  in.tensor1.fill_(99.0);
  in.tensor3.fill_(88.0);
  in.tensor4.fill_(77.0);
  ctx.check(!Tensor::equal(complex_dc["tensor"].as_tensor(), in.tensor1), "complex_dataclass.tensor", "independence",
            "the staged tensor follows the mutated source");
  ctx.check(!Tensor::equal(nested["tensor"].as_tensor(), in.tensor3), "complex_dataclass.nested.tensor", "independence",
            "the staged tensor follows the mutated source");
  ctx.check(!Tensor::equal(frozen_dc["tensor"].as_tensor(), in.tensor4), "frozen_dataclass.tensor", "independence",
            "the staged tensor follows the mutated source");
}

void objects_strict_case(CaseContext& ctx, Source src, PinShare cfg) {
  DataclassInput in = make_dataclass_input(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, in.state_dict, "dataclasses");
  ctx.add_failures(verify_staged(in.state_dict, staged, memory_expectation(cfg)));
  Object& frozen = staged["frozen_dataclass"].as_object();
  bool refused = false;
  try {
    frozen.set_field("value", 1);
  } catch (const InvalidArgument&) {
    refused = true;
  }
  ctx.check(refused && frozen.field("value").as_int() == 100, "frozen_dataclass", "frozen",
            "the staged frozen object accepted a field assignment");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dataclasses) {
  static constexpr PinShare kDefaultsOnly[] = {PinShare{}};
  add_matrix(registry, "dataclasses",
             "Plain, nested and frozen dataclasses are rebuilt around staged tensors, independent of the sources",
             "TestStateDictStager.test_dataclasses", Profile::upstream, kBothSources, kDefaultsOnly, dataclasses_case);
  add_matrix(registry, "objects_exact",
             "Objects keep type name, field order and frozen flag (a staged frozen object refuses assignment)",
             "strict", Profile::strict, kBothSources, kFourConfigs, objects_strict_case);
}

}  // namespace stagekit::conformance
