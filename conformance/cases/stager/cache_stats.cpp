// cache_stats() judged itself: several cases read the cache through the implementation's own count,
// so that count must agree with what the staged buffers show from outside (the probes).
#include <fmt/format.h>

#include <cstdint>
#include <optional>
#include <set>
#include <string_view>

#include "../../harness/fixtures.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

// The staged result's distinct storages as the probes see them.
struct ProbedStorages {
  std::size_t count = 0;
  std::uint64_t bytes = 0;
  std::uint64_t locked_bytes = 0;  // of the storages whose every page is page-locked
  std::uint64_t shared_bytes = 0;  // of the storages in a shared mapping
};

ProbedStorages probe_storages(const Value& staged) {
  ProbedStorages p;
  std::set<const void*> counted;
  for (const TensorLeaf& leaf : tensor_leaves(staged)) {
    const Storage& storage = leaf.tensor.storage();
    if (storage.nbytes() == 0 || !counted.insert(storage.data()).second) continue;
    ++p.count;
    p.bytes += storage.nbytes();
    if (probe::page_locked(storage.data(), storage.nbytes()).yes) p.locked_bytes += storage.nbytes();
    if (probe::shared_mapping(storage.data(), storage.nbytes()).yes) p.shared_bytes += storage.nbytes();
  }
  return p;
}

// `want`: what the probes found in the staged result (all zero once the stager is closed).
void check_stats(CaseContext& ctx, const StagerUnderTest& stager, const ProbedStorages& want, std::string_view when) {
  const std::optional<CacheStats> s = stager.cache_stats();
  if (!ctx.check(s.has_value(), "<stager>", "cache_stats",
                 fmt::format("{}: cache_stats() returned nothing although declared", when))) {
    return;
  }
  const auto agree = [&](std::string_view what, std::uint64_t reported, std::uint64_t probed) {
    ctx.check(reported == probed, "<stager>", fmt::format("cache_stats {}", what),
              fmt::format("{}: cache_stats() reports {} {}, expected {}", when, reported, what, probed));
  };
  agree("cached_storages", s->cached_storages, want.count);
  agree("cached_bytes", s->cached_bytes, want.bytes);
  agree("pinned_bytes", s->pinned_bytes, want.locked_bytes);
  agree("shared_bytes", s->shared_bytes, want.shared_bytes);
}

// One stage on a new stager: the counts are the staged result's distinct storages (a view and its
// base counted once), their bytes, and the bytes the probes find page-locked and shared; a second
// stage of the same sources leaves them as they are; close() brings them to zero.
void agree_with_probes_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor big = Tensor::random({64, 1024}, DType::float32, 501, dev);  // 256 KiB
  const Value sd = Value::dict({
      {"big", big},
      {"big_t", big.transpose(0, 1)},
      {"half", Tensor::random({32, 1024}, DType::float16, 502, dev)},  // 64 KiB
      {"steps", Tensor::random({2048}, DType::int64, 503, dev)},       // 16 KiB
      {"nested", Value::dict({{"row", big.select(0, 3)}})},
  });
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value first = stage_or_fail(ctx, *stager, sd, "first stage");
  const ProbedStorages probed = probe_storages(first);
  ctx.check(probed.count == 3, "<staged>", "one buffer per source storage",
            fmt::format("{} distinct staged storages, expected 3", probed.count));
  check_stats(ctx, *stager, probed, "after the first stage");
  const Value second = stage_or_fail(ctx, *stager, sd, "second stage");
  check_stats(ctx, *stager, probe_storages(second), "after a second stage of the same sources");
  stager->close();
  check_stats(ctx, *stager, ProbedStorages{}, "after close()");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(cache_stats) {
  add_matrix(registry, "cache_stats_agree_with_probes",
             "cache_stats() agrees with the probes: after a stage, cached_storages and cached_bytes are the staged "
             "result's distinct storages (a view counted with its base) and their bytes, pinned_bytes the bytes found "
             "page-locked, shared_bytes those found in shared mappings; unchanged by a second stage of the same "
             "sources; zero after close()",
             "strict", Profile::strict, kBothSources, kFourConfigs, agree_with_probes_case,
             Requirements{.cache_stats = true});
}

}  // namespace stagekit::conformance
