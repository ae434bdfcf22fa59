// A.1.4 test_different_dtypes, and the strict per-dtype cases: every dtype staged byte for byte,
// NaN payloads and other odd bit patterns included.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr PinShare kDefaults{};

void different_dtypes_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const std::pair<const char*, DType> keys[] = {{"float32", DType::float32},
                                                {"float64", DType::float64},
                                                {"int32", DType::int32},
                                                {"int64", DType::int64},
                                                {"bool", DType::bool_}};
  auto sd = std::make_shared<Dict>();
  std::uint64_t seed = 40;
  for (const auto& [key, dtype] : keys) sd->set(std::string(key), Tensor::random({4, 4}, dtype, seed++, dev));
  const Value source(sd);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "dtypes");
  for (const auto& [key, dtype] : keys) {
    const Tensor s = source[key].as_tensor();
    const Tensor d = staged[key].as_tensor();
    ctx.check(d.device().is_cpu(), key, "device", "staged tensor is on " + d.device().str());
    ctx.check(d.dtype() == dtype, key, "dtype",
              fmt::format("staged dtype {} vs {}", dtype_name(d.dtype()), dtype_name(dtype)));
    ctx.check(Tensor::equal(s, d), key, "values", "staged values differ from the source");
  }
}

void every_dtype_case(CaseContext& ctx, Source src, PinShare cfg, DType dtype) {
  const Device dev = source_device(src);
  Tensor t = Tensor::empty({7, 5}, dtype, dev);
  t.random_bytes_(0xD7 + static_cast<std::uint64_t>(dtype));
  Tensor scalar = Tensor::empty({}, dtype, dev);
  scalar.random_bytes_(0x5C + static_cast<std::uint64_t>(dtype));
  const Value source = Value::dict({{"matrix", t}, {"column", t.select(1, 3)}, {"scalar", scalar}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, std::string(dtype_name(dtype)));
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dtypes) {
  static constexpr PinShare kDefaultsOnly[] = {kDefaults};
  add_matrix(registry, "different_dtypes", "float32, float64, int32, int64 and bool tensors keep dtype and values",
             "TestStateDictStager.test_different_dtypes", Profile::upstream, kBothSources, kDefaultsOnly,
             different_dtypes_case);
  for (DType dtype : kAllDTypes) {
    for (Source s : kBothSources) {
      add_stager_case(registry, CaseName("dtype", {std::string(dtype_name(dtype))}), s, kDefaults,
                      fmt::format("A {} matrix, a strided column of it and a 0-dim tensor with arbitrary bit patterns "
                                  "stage byte for byte ({} sources)",
                                  dtype_name(dtype), source_name(s)),
                      "strict", Profile::strict, requirements_for(s, kDefaults),
                      [s, dtype](CaseContext& ctx) { every_dtype_case(ctx, s, kDefaults, dtype); });
    }
  }
}

}  // namespace stagekit::conformance
