// close() releases everything; repeated stage/close cycles do not grow memory (the analogue of
// upstream's test_async_save_no_memory_leak, single process).
#include <fmt/format.h>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

// Every leak between `before` and now fails the case under its own property name.
void check_back_to(CaseContext& ctx, const probe::ProcessResources& before, std::string_view when) {
  for (const probe::Leak& leak : probe::leaks_since(before, probe::ProcessResources::snapshot())) {
    ctx.check(false, "<process>", leak.what + " released", fmt::format("{}: {}", when, leak.detail));
  }
}

Value make_dict(Device dev, std::uint64_t seed) {
  const Tensor big = Tensor::random({512, 1024}, DType::float32, seed, dev);  // 2 MiB
  return Value::dict({{"big", big},
                      {"big_t", big.transpose(0, 1)},
                      {"mid", Tensor::random({512, 1024}, DType::float16, seed + 1, dev)},
                      {"tiny", Tensor::scalar(3.0, DType::float32, dev)}});
}

void close_releases_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value sd = make_dict(dev, 201);
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  auto stager = ctx.make_stager(stager_config(cfg));
  {
    const Value staged = stage_or_fail(ctx, *stager, sd, "before close");
    ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
    if (ctx.capabilities().cache_stats) {
      const auto stats = stager->cache_stats();
      ctx.check(stats && stats->cached_storages == 3, "<stager>", "cache entries",
                stats ? fmt::format("{} cached storages, expected 3", stats->cached_storages) : "no stats");
    }
  }
  stager->close();
  if (ctx.capabilities().cache_stats) {
    const auto stats = stager->cache_stats();
    ctx.check(stats && stats->cached_storages == 0 && stats->cached_bytes == 0 && stats->pinned_bytes == 0 &&
                  stats->shared_bytes == 0,
              "<stager>", "close",
              stats ? fmt::format("after close(): {} storages, {} bytes, {} pinned, {} shared", stats->cached_storages,
                                  stats->cached_bytes, stats->pinned_bytes, stats->shared_bytes)
                    : "no stats");
  }
  check_back_to(ctx, before, "after close() with the staged results dropped");
}

void no_growth_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value sd = make_dict(dev, 211);
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  constexpr int kWarmup = 3;
  constexpr int kCycles = 20;
  constexpr std::uint64_t kAllowedGrowth = std::uint64_t{2} << 20;  // less than one cycle's 3 MiB
  std::uint64_t rss_after_warmup = 0;
  auto one = ctx.make_stager(stager_config(cfg));
  for (int i = 0; i < kCycles; ++i) {
    {
      const Value staged = stage_or_fail(ctx, *one, sd, fmt::format("cycle {} on one stager", i));
      auto fresh = ctx.make_stager(stager_config(cfg));
      const Value staged_fresh = stage_or_fail(ctx, *fresh, sd, fmt::format("cycle {} on a new stager", i));
      if (i == 0) ctx.add_failures(verify_staged(sd, staged_fresh, memory_expectation(cfg)));
      fresh->close();
    }
    one->close();
    if (i + 1 == kWarmup) rss_after_warmup = probe::resident_bytes();
  }
  const std::uint64_t rss_end = probe::resident_bytes();
  ctx.check(rss_end <= rss_after_warmup + kAllowedGrowth, "<process>", "resident memory",
            fmt::format("resident memory grew from {} to {} bytes over {} stage/close cycles", rss_after_warmup,
                        rss_end, kCycles - kWarmup));
  check_back_to(ctx, before, "after the cycles");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(release) {
  // Pageable buffers going back to the heap cannot be seen from outside (kProbedConfigs): that
  // configuration needs the implementation's own count.
  static constexpr PinShare kPageable[] = {{false, false}};
  constexpr std::string_view kClose =
      "close() empties the cache and, with the results dropped, releases every locked page, shared mapping "
      "and file descriptor, and leaves no shared-memory object behind";
  add_matrix(registry, "close_releases_everything", kClose, "strict", Profile::strict, kBothSources, kProbedConfigs,
             close_releases_case);
  add_matrix(registry, "close_releases_everything",
             std::string(kClose) +
                 " (pageable memory counted by cache_stats: an implementation without them is "
                 "not_supported)",
             "strict", Profile::strict, kBothSources, kPageable, close_releases_case,
             Requirements{.cache_stats = true});
  add_matrix(registry, "no_growth_over_cycles",
             "20 stage/close cycles (one long-lived stager and a new stager per cycle) do not grow resident memory",
             "TestDTensorStateDictStager.test_async_save_no_memory_leak (single-process analogue)", Profile::strict,
             kBothSources, kFourConfigs, no_growth_case);
}

}  // namespace stagekit::conformance
