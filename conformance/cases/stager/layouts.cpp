// C.1.12: strides and offsets of non-contiguous views are preserved exactly.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

struct Layout {
  const char* name;
  const char* description;
  Tensor (*make)(const Tensor& base);  // base: float32 [8, 12]
};

constexpr Layout kLayouts[] = {
    {"transposed", "a transposed view", [](const Tensor& b) { return b.transpose(0, 1); }},
    {"stepped", "a slice with step 3 along columns and offset", [](const Tensor& b) { return b.slice(1, 2, 12, 3); }},
    {"expanded", "an expanded (stride 0) view",
     [](const Tensor& b) {
       return b.select(0, 5).view({1, 12}).expand({4, 12});
     }},
    {"row", "a selected row (offset, 1-D)", [](const Tensor& b) { return b.select(0, 6); }},
    {"column", "a selected column (stride 12)", [](const Tensor& b) { return b.select(1, 7); }},
    {"overlapping", "overlapping windows built with as_strided",
     [](const Tensor& b) {
       return b.view({96}).as_strided({10, 8}, {5, 1}, 9);
     }},
    {"size_one_dims", "a contiguous view whose size-1 dimensions have strides of their own (7 and 1000)",
     [](const Tensor& b) {
       // Contiguous (size-1 dimensions do not count), yet not the strides a contiguous tensor is given: those
       // are (12, 12, 12, 1). unsqueeze() and a transposed [1, n] view make such strides all the time.
       return b.view({96}).as_strided({4, 1, 1, 12}, {12, 7, 1000, 1}, 12);
     }},
    {"permuted_3d", "a 3-D view with permuted strides",
     [](const Tensor& b) {
       return b.view({2, 4, 12}).transpose(0, 2).transpose(1, 2);
     }},
};

void layout_case(CaseContext& ctx, Source src, PinShare cfg, const Layout& layout) {
  const Tensor base = Tensor::random({8, 12}, DType::float32, 191, source_device(src));
  // The view first, so an implementation cannot rely on seeing the contiguous base before its views.
  const Value sd = Value::dict({{"view", layout.make(base)}, {"base", base}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, sd, layout.name);
  ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  const Value alone = Value::dict({{"view", layout.make(base)}});
  auto stager2 = ctx.make_stager(stager_config(cfg));
  const Value staged_alone = stage_or_fail(ctx, *stager2, alone, std::string(layout.name) + " alone");
  ctx.add_failures(verify_staged(alone, staged_alone, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(layouts) {
  static constexpr PinShare kDefaultsOnly[] = {PinShare{}};
  for (const Layout& layout : kLayouts) {
    add_matrix(registry, CaseName("layout", {layout.name}),
               fmt::format("Sizes, strides, offset and bytes of {} are preserved, with and without its base in the "
                           "dict",
                           layout.description),
               "strict", Profile::strict, kBothSources, kDefaultsOnly,
               [&layout](CaseContext& ctx, Source s, PinShare c) { layout_case(ctx, s, c, layout); });
  }
}

}  // namespace stagekit::conformance
