// C.1.2, B.1.3: a cache entry goes with its source, so a long-lived stager that stages a new model
// each time (new source storages, the old ones dropped) holds no more than a bounded amount of
// memory. Seen from outside, without the implementation's cache_stats: resident memory, page-locked
// bytes, shared mappings and descriptors over many models, none of which may grow by more than two
// models' worth (room for a pool that keeps a buffer or two for reuse).
#include <fmt/format.h>

#include <cstdint>
#include <tuple>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

constexpr std::int64_t kModelElements = std::int64_t{1} << 20;  // 4 MiB of float32 a model
constexpr std::uint64_t kModelBytes = std::uint64_t{4} << 20;
constexpr int kDeadSourceWarmup = 2;
constexpr int kDeadSourceModels = 8;
constexpr std::uint64_t kAllowedModels = 2;

// Stages one new model: its sources and its result are dropped on return.
void stage_new_model(CaseContext& ctx, StagerUnderTest& stager, Source src, PinShare cfg, int i) {
  const Device dev = source_device(src);
  const Value sd = Value::dict(
      {{"layer",
        Value::dict({{"weight", Tensor::random({kModelElements}, DType::float32, 1400 + static_cast<unsigned>(i), dev)},
                     {"bias", Tensor::random({64}, DType::float32, 1500, dev)}})},
       {"step", i}});
  const Value staged = stage_or_fail(ctx, stager, sd, fmt::format("model {}", i));
  if (i == 0) ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
}

void dead_sources_release_case(CaseContext& ctx, Source src, PinShare cfg) {
  auto stager = ctx.make_stager(stager_config(cfg));
  for (int i = 0; i < kDeadSourceWarmup; ++i) stage_new_model(ctx, *stager, src, cfg, i);
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  const std::uint64_t rss_before = probe::resident_bytes();
  for (int i = kDeadSourceWarmup; i < kDeadSourceWarmup + kDeadSourceModels; ++i)
    stage_new_model(ctx, *stager, src, cfg, i);
  const probe::ProcessResources after = probe::ProcessResources::snapshot();
  const std::uint64_t rss_after = probe::resident_bytes();
  const auto grown = [](std::uint64_t from, std::uint64_t to) { return to > from ? to - from : 0; };
  const std::string what = fmt::format(
      "over {} models of {} MiB staged one after the other into one stager, each model's sources dropped before "
      "the next",
      kDeadSourceModels, kModelBytes >> 20);
  const std::string why =
      "the staged buffers of dead sources are kept (a cache entry must go with its source) or the sources are kept "
      "alive";
  ctx.check(grown(rss_before, rss_after) <= kAllowedModels * kModelBytes, "<process>", "resident memory",
            fmt::format("resident memory grew by {:.1f} MiB {}: {}",
                        static_cast<double>(grown(rss_before, rss_after)) / (1 << 20), what, why));
  // Both views of page-locked memory: VmLck, and the CUDA driver's (cudaHostAlloc, cudaHostRegister).
  for (const auto& [view, from, to] :
       {std::tuple{"VmLck", before.locked_bytes, after.locked_bytes},
        std::tuple{"the CUDA driver's view", before.driver_locked_bytes, after.driver_locked_bytes}}) {
    ctx.check(grown(from, to) <= kAllowedModels * kModelBytes, "<process>", "page-locked memory",
              fmt::format("page-locked memory ({}) grew by {:.1f} MiB {}: {}", view,
                          static_cast<double>(grown(from, to)) / (1 << 20), what, why));
  }
  ctx.check(after.shared_mappings <= before.shared_mappings + 2 * kAllowedModels, "<process>", "shared memory",
            fmt::format("shared mappings went from {} to {} {}: {}", before.shared_mappings, after.shared_mappings,
                        what, why));
  ctx.check(after.descriptors.size() <= before.descriptors.size() + 2 * kAllowedModels, "<process>", "file descriptors",
            fmt::format("open descriptors went from {} to {} {}: {}", before.descriptors.size(),
                        after.descriptors.size(), what, why));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dead_sources) {
  add_matrix(registry, "dead_sources_release_buffers",
             "Eight new 4 MiB models staged one after the other into one stager, each dropped before the next, grow "
             "resident memory, page-locked memory, shared mappings and descriptors by at most two models' worth: a "
             "cache entry goes with its source (probed, without cache_stats)",
             "strict (spec C.1.2)", Profile::strict, kBothSources, kFourConfigs, dead_sources_release_case);
}

}  // namespace stagekit::conformance
