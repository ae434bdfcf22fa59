// B.1.6: what a stager hands out lives on its own. Staged buffers are released once no result
// references them, never before: a result stays byte-exact, page-locked and shared after the stager
// that made it is destroyed, closed first or not (a checkpointer dropped while its last checkpoint
// is still being written). A stager that frees, unmaps or unpins its buffers in its destructor
// leaves its results on memory that is gone; one that unregisters a released buffer a second time
// when it is destroyed (spec C.1.16) unlocks the result that now lives at the same address.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

Value outliving_dict(Device dev, std::uint64_t seed) {
  const Tensor big = Tensor::random({1 << 20}, DType::float32, seed, dev);  // 4 MiB
  auto d = std::make_shared<Dict>();
  d->set("big", big);
  d->set("big_view", big.narrow(0, 1000, 4096));
  for (int i = 0; i < 8; ++i)  // small ones, which a stager may pack together
    d->set(fmt::format("small_{}", i), Tensor::random({16}, DType::float32, seed + 1 + i, dev));
  d->set("step", Tensor::scalar(7, DType::int64, dev));
  d->set("lr", 0.25);
  return Value(d);
}

void results_outlive_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value dropped_sd = outliving_dict(dev, 1701);
  const Value closed_sd = outliving_dict(dev, 1801);
  const Value restaged_sd = outliving_dict(dev, 1901);
  Value dropped_result;
  Value closed_result;
  Value restaged_result;
  {
    auto dropped = ctx.make_stager(stager_config(cfg));
    dropped_result = stage_or_fail(ctx, *dropped, dropped_sd, "the stager destroyed without close()");
    auto closed = ctx.make_stager(stager_config(cfg));
    closed_result = stage_or_fail(ctx, *closed, closed_sd, "the stager closed, then destroyed");
    closed->close();
    // Spec C.1.16: a buffer is unregistered exactly once. close() releases the first stage's buffers;
    // the stage after it likely gets memory at the same addresses, which a second unregistering of
    // the first buffers (when the stager is destroyed) would unlock under the live result.
    auto restaged = ctx.make_stager(stager_config(cfg));
    (void)stage_or_fail(ctx, *restaged, restaged_sd, "a stage whose result is dropped before close()");
    restaged->close();
    restaged_result = stage_or_fail(ctx, *restaged, restaged_sd, "a stage after close()");
  }  // the stagers are destroyed here; their results are not
  for (const auto& [what, sd, staged] :
       {std::tuple{"destroyed without close()", &dropped_sd, &dropped_result},
        std::tuple{"closed, then destroyed", &closed_sd, &closed_result},
        std::tuple{"closed (releasing an earlier stage's buffers), staged into again, then destroyed", &restaged_sd,
                   &restaged_result}}) {
    for (Failure f : verify_staged(*sd, *staged, memory_expectation(cfg))) {
      f.detail = fmt::format("after the stager that made it was {}: {}", what, f.detail);
      ctx.add_failures({f});
    }
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(results_outlive_stager) {
  add_matrix(registry, "results_outlive_the_stager",
             "Results stay byte-exact, page-locked and shared once the stager that made them is destroyed, with or "
             "without close() first, and when close() released an earlier stage's buffers before this result was "
             "staged (buffers are released only when no result references them, and unregistered exactly once)",
             "strict (spec B.1.6, C.1.16)", Profile::strict, kBothSources, kFourConfigs, results_outlive_case);
}

}  // namespace stagekit::conformance
