// C.1.6: non-blocking staging hands out correct values once waited on.
#include <fmt/format.h>

#include <optional>
#include <string>
#include <string_view>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"

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

// Destroying an unwaited handle waits for its copies: once it is gone, the sources are the caller's
// again and the buffers hold the values of the stage (an earlier blocking result aliases them, so it
// shows them). The sources change right after the handle goes, at one element in every 4 KiB of each
// layer: a copy still running past that point would carry the change into the buffers.
void dropped_handle_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < 4; ++i) {
    d->set(fmt::format("layer{}", i),
           Tensor::random({2048, 1024}, DType::float32, 171 + static_cast<std::uint64_t>(i), dev));
  }
  const Value sd(d);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value earlier = stage_or_fail(ctx, *stager, sd, "blocking, before");
  for (int round = 0; round < 6 && !ctx.failed(); ++round) {
    const double value = round + 0.5;
    for (int i = 0; i < 4; ++i) Tensor(sd[fmt::format("layer{}", i)].as_tensor()).fill_(value);
    (void)start_or_fail(ctx, *stager, sd, "dropped unwaited");  // the handle is destroyed here
    for (int i = 0; i < 4; ++i) Tensor(sd[fmt::format("layer{}", i)].as_tensor()).slice(1, 1023, 1024).fill_(-1.0);
    for (int i = 0; i < 4; ++i) {
      const std::string key = fmt::format("layer{}", i);
      // Where the sources changed (a copy still running when they did leaves the old values or the change).
      const Tensor buffer = earlier[key].as_tensor().slice(1, 1023, 1024);
      if (all_equal(buffer, value)) continue;
      ctx.check(false, key, "dropped handle waits",
                fmt::format("round {}: once the unwaited handle was destroyed, the buffers (seen through an earlier "
                            "result, which must alias them) do not hold the values staged: {}",
                            round, describe_difference(buffer, buffer.clone().fill_(value))));
    }
  }
}

// StagerUnderTest::close() with a non-blocking stage in flight (its handle not waited on): close()
// waits for the copies, so sources changed right after it (one element in every 4 KiB of each 8 MiB
// layer) do not reach the result the handle then hands out; once the handle and its result are
// dropped, nothing is left (page-locked pages, shared mappings, descriptors; with cache_stats, an
// empty cache); and the stager stays usable.
void close_in_flight_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto d = std::make_shared<Dict>();
  auto expected = std::make_shared<Dict>();
  for (int i = 0; i < 4; ++i) {
    const Tensor layer = Tensor::random({2048, 1024}, DType::float32, 181 + static_cast<std::uint64_t>(i), dev);
    d->set(fmt::format("layer{}", i), layer);
    expected->set(fmt::format("layer{}", i), layer.clone());
  }
  const Value sd(d);
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  auto stager = ctx.make_stager(stager_config(cfg));
  {
    auto pending = start_or_fail(ctx, *stager, sd, "closed unwaited");
    try {
      stager->close();
    } catch (const std::exception& e) {
      ctx.require(false, "<stager>", "close with a stage in flight", fmt::format("close() raised: {}", e.what()));
    }
    for (int i = 0; i < 4; ++i) Tensor(sd[fmt::format("layer{}", i)].as_tensor()).slice(1, 1023, 1024).fill_(-1.0);
    const Value staged = wait_or_fail(ctx, *pending, "after close()");
    ctx.add_failures(verify_staged(Value(expected), staged, memory_expectation(cfg)));
  }
  for (const probe::Leak& leak : probe::leaks_since(before, probe::ProcessResources::snapshot())) {
    ctx.check(false, "<process>", leak.what + " released",
              fmt::format("close() with a stage in flight, then the handle and its result dropped: {}", leak.detail));
  }
  if (ctx.capabilities().cache_stats) {
    const std::optional<CacheStats> stats = stager->cache_stats();
    ctx.check(stats && stats->cached_storages == 0 && stats->cached_bytes == 0, "<stager>", "cache released",
              stats ? fmt::format("close() with a stage in flight left {} storages ({} bytes) in the cache",
                                  stats->cached_storages, stats->cached_bytes)
                    : "no cache_stats although the implementation declares them");
  }
  const Value again = stage_or_fail(ctx, *stager, sd, "after close()");
  ctx.add_failures(verify_staged(sd, again, memory_expectation(cfg)));
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
  static constexpr Source kCpuOnly[] = {Source::cpu};
  add_matrix(
      registry, "non_blocking_dropped_handle_waits",
      "Destroying an unwaited non-blocking stage's handle (32 MiB, CPU sources; 6 times) waits for its copies: sources "
      "changed right after it do not reach the buffers, which an earlier result aliases",
      "strict", Profile::strict, kCpuOnly, kFourConfigs, dropped_handle_case, nb);
  constexpr std::string_view kCloseInFlight =
      "close() with a non-blocking stage in flight (32 MiB, CPU sources, its handle not waited on) waits for its "
      "copies: sources changed right after close() do not reach the result the handle then hands out; with the "
      "handle and result dropped, nothing is left (page-locked pages, shared mappings, descriptors, the cache with "
      "cache_stats), and the stager stays usable";
  add_matrix(registry, "non_blocking_close_in_flight", kCloseInFlight, "strict", Profile::strict, kCpuOnly,
             kProbedConfigs, close_in_flight_case, nb);
  static constexpr PinShare kPageable[] = {{false, false}};
  add_matrix(registry, "non_blocking_close_in_flight",
             std::string(kCloseInFlight) +
                 " (pageable memory counted by cache_stats: an implementation without them is not_supported)",
             "strict", Profile::strict, kCpuOnly, kPageable, close_in_flight_case,
             Requirements{.non_blocking = true, .cache_stats = true});
}

}  // namespace stagekit::conformance
