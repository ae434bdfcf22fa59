// A.1.6 test_complex_storage_sharing: many views of one storage, offsets preserved, aliasing real.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void complex_sharing_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor base = Tensor::random({10, 10}, DType::float32, 11, dev);
  const Tensor view1 = base.view({100});
  const Value source = Value::dict({{"base", base},
                                    {"view1", view1},
                                    {"view2", base.view({10, 10})},
                                    {"slice1", base.slice(0, 2, 8).slice(1, 2, 8)},
                                    {"slice2", base.slice(1, 0, 5)},
                                    {"slice3", view1.slice(0, 10, 60)}});
  ctx.require(
      source["slice1"].as_tensor().storage_offset() == 22 && source["slice3"].as_tensor().storage_offset() == 10,
      "slice1", "input", "the test input is wrong: slice1 must have offset 22 and slice3 offset 10");
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "complex sharing");
  ctx.add_failures(compare_like_upstream(source, staged, dev));
  const Tensor staged_base = staged["base"].as_tensor();
  for (const char* key : {"view1", "view2", "slice1", "slice2", "slice3"}) {
    ctx.check(staged[key].as_tensor().storage().data() == staged_base.storage().data(), key, "storage sharing",
              "does not report the same storage base address as staged base");
  }
  Tensor(staged_base).fill_(42.0);
  for (const char* key : {"view1", "view2", "slice1", "slice2", "slice3"}) {
    ctx.check(all_equal(staged[key].as_tensor(), 42.0), key, "aliasing",
              "after filling staged base with 42.0 this view does not read 42.0 everywhere");
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(complex_storage_sharing) {
  static constexpr PinShare kDefaultsOnly[] = {PinShare{}};
  add_matrix(registry, "complex_storage_sharing",
             "Five views and slices of one 10x10 storage share one staged buffer with offsets 22 and 10 kept",
             "TestStateDictStager.test_complex_storage_sharing", Profile::upstream, kBothSources, kDefaultsOnly,
             complex_sharing_case);
}

}  // namespace stagekit::conformance
