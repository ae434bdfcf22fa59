// A.1.5 test_empty_tensors: empty and 0-dim tensors keep shape and dtype.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void empty_tensors_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value source = Value::dict({{"empty_0d", Tensor::empty({0}, DType::float32, dev)},
                                    {"empty_1d", Tensor::empty({0}, DType::float32, dev)},
                                    {"empty_2d", Tensor::empty({0, 0}, DType::float32, dev)},
                                    {"empty_3d", Tensor::empty({0, 0, 0}, DType::float32, dev)},
                                    {"zero_dim", Tensor::scalar(0.0, DType::float32, dev)}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "empty tensors");
  for (const auto& [key, value] : source.as_dict().entries()) {
    const std::string k = dict_key_str(key);
    const Tensor s = value.as_tensor();
    const Tensor d = staged[k].as_tensor();
    ctx.check(d.device().is_cpu(), k, "device", "staged tensor is on " + d.device().str());
    ctx.check(std::equal(s.sizes().begin(), s.sizes().end(), d.sizes().begin(), d.sizes().end()), k, "shape",
              fmt::format("[{}] vs [{}]", fmt::join(s.sizes(), ", "), fmt::join(d.sizes(), ", ")));
    ctx.check(d.dtype() == s.dtype(), k, "dtype", std::string(dtype_name(d.dtype())));
  }
}

void empty_tensors_strict_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor base = Tensor::random({6, 4}, DType::float32, 7, dev);
  const Value source = Value::dict({{"empty", Tensor::empty({0, 3}, DType::float32, dev)},
                                    {"scalar", Tensor::scalar(-2.5, DType::float32, dev)},
                                    {"empty_view", base.narrow(0, 6, 0)},
                                    {"int8_scalar", Tensor::scalar(-7, DType::int8, dev)},
                                    {"base", base},
                                    // A second zero-byte storage of its own: without bytes it has no
                                    // address of its own either, and it must still stage apart.
                                    {"another_empty", Tensor::empty({2, 0}, DType::int64, dev)}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "empty tensors");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(empty_tensors) {
  add_matrix(registry, "empty_tensors", "Empty tensors of 1 to 3 dimensions and a 0-dim scalar keep shape and dtype",
             "TestStateDictStager.test_empty_tensors", Profile::upstream, kBothSources, kFourConfigs,
             empty_tensors_case);
  add_matrix(registry, "empty_tensors_exact",
             "Two empty tensors on zero-byte storages of their own, an empty view of a real storage and 1-byte/4-byte "
             "scalars stage exactly (values, layout, sharing, memory kind below the pinning threshold)",
             "strict", Profile::strict, kBothSources, kFourConfigs, empty_tensors_strict_case);
}

}  // namespace stagekit::conformance
