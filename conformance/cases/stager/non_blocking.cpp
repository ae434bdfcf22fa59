// C.1.6: non-blocking staging hands out correct values once waited on.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

// Large enough (16 MiB) that copies really run in the background in a parallel implementation.
Value make_large_dict(Device dev, std::uint64_t seed) {
  auto sd = std::make_shared<Dict>();
  for (int i = 0; i < 4; ++i) {
    sd->set(fmt::format("layer{}", i),
            Tensor::random({1024, 1024}, DType::float32, seed + static_cast<std::uint64_t>(i), dev));
  }
  const Tensor small = Tensor::random({3, 3}, DType::float64, seed + 10, dev);
  sd->set("small", small);
  sd->set("small_t", small.transpose(0, 1));
  return Value(sd);
}

Value wait_or_fail(CaseContext& ctx, PendingResult& pending, std::string_view what) {
  try {
    return pending.wait();
  } catch (const Error& e) {
    ctx.require(false, e.path().empty() ? "<stager>" : e.path(), fmt::format("wait ({})", what),
                fmt::format("raised {}: {}", error_code_name(e.code()), e.detail()));
  }
  return {};
}

std::unique_ptr<PendingResult> start_or_fail(CaseContext& ctx, StagerUnderTest& stager, const Value& sd,
                                             std::string_view what) {
  try {
    auto pending = stager.stage_async(sd);
    ctx.require(pending != nullptr, "<stager>", "stage_async", "returned no handle");
    return pending;
  } catch (const Error& e) {
    ctx.require(false, e.path().empty() ? "<stager>" : e.path(), fmt::format("stage_async ({})", what),
                fmt::format("raised {}: {}", error_code_name(e.code()), e.detail()));
  }
  return nullptr;
}

void correct_after_wait_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Value sd = make_large_dict(source_device(src), 141);
  auto stager = ctx.make_stager(stager_config(cfg));
  auto pending = start_or_fail(ctx, *stager, sd, "cold");
  const Value cold = wait_or_fail(ctx, *pending, "cold");
  ctx.add_failures(verify_staged(sd, cold, memory_expectation(cfg)));
  Tensor(sd["layer2"].as_tensor()).fill_(0.25);
  auto pending_warm = start_or_fail(ctx, *stager, sd, "warm");
  const Value warm = wait_or_fail(ctx, *pending_warm, "warm");
  ctx.add_failures(verify_staged(sd, warm, memory_expectation(cfg)));
}

// A second stage started before the first was waited on is ordered after it; a blocking stage too.
void back_to_back_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value sd = make_large_dict(dev, 151);
  const Value other = make_large_dict(dev, 161);
  auto stager = ctx.make_stager(stager_config(cfg));
  auto p1 = start_or_fail(ctx, *stager, sd, "first");
  auto p2 = start_or_fail(ctx, *stager, other, "second");
  const Value blocking = stage_or_fail(ctx, *stager, sd, "blocking, while two are pending");
  const Value r2 = wait_or_fail(ctx, *p2, "second");
  const Value r1 = wait_or_fail(ctx, *p1, "first");
  ctx.add_failures(verify_staged(sd, r1, memory_expectation(cfg)));
  ctx.add_failures(verify_staged(other, r2, memory_expectation(cfg)));
  ctx.add_failures(verify_staged(sd, blocking, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(non_blocking) {
  Requirements nb;
  nb.non_blocking = true;
  add_matrix(registry, "non_blocking_correct_after_wait",
             "A non-blocking stage (16 MiB) hands out exact values after wait(), cold and warm", "strict",
             Profile::strict, kBothSources, kFourConfigs, correct_after_wait_case, nb);
  add_matrix(registry, "non_blocking_back_to_back",
             "Two non-blocking stages and a blocking one issued without waiting are all correct after the waits",
             "strict", Profile::strict, kBothSources, kFourConfigs, back_to_back_case, nb);
}

}  // namespace stagekit::conformance
