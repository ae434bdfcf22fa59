// A.1.8 test_cpu_storage_independence: CPU sources are copied, never aliased.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void cpu_independence_case(CaseContext& ctx, Source, PinShare cfg) {
  Tensor tensor1 = Tensor::random({4, 4}, DType::float32, 31);
  Tensor tensor2 = Tensor::random({8, 8}, DType::float32, 32);
  const Value source = Value::dict({{"tensor1", tensor1}, {"tensor2", tensor2}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "cpu sources");
  const Tensor s1 = staged["tensor1"].as_tensor();
  const Tensor s2 = staged["tensor2"].as_tensor();
  ctx.check(s1.storage().data() != tensor1.storage().data(), "tensor1", "independence",
            "the staged storage has the source's address");
  ctx.check(s2.storage().data() != tensor2.storage().data(), "tensor2", "independence",
            "the staged storage has the source's address");
  ctx.check(Tensor::equal(s1, tensor1), "tensor1", "values", "staged values differ");
  ctx.check(Tensor::equal(s2, tensor2), "tensor2", "values", "staged values differ");
  const Tensor clone1 = tensor1.clone();
  const Tensor clone2 = tensor2.clone();
  tensor1.fill_(99.0);
  tensor2.fill_(88.0);
  ctx.require(!Tensor::equal(tensor1, clone1), "tensor1", "input", "filling the source did not change it");
  ctx.check(Tensor::equal(s1, clone1), "tensor1", "independence", "the staged tensor changed with its source");
  ctx.check(Tensor::equal(s2, clone2), "tensor2", "independence", "the staged tensor changed with its source");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(cpu_storage_independence) {
  static constexpr Source kCpu[] = {Source::cpu};
  static constexpr PinShare kDefaultsOnly[] = {PinShare{}};
  add_matrix(registry, "cpu_storage_independence", "CPU source tensors are copied into new storage, not aliased",
             "TestStateDictStager.test_cpu_storage_independence", Profile::upstream, kCpu, kDefaultsOnly,
             cpu_independence_case);
}

}  // namespace stagekit::conformance
