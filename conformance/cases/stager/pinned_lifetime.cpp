// A staged buffer stays page-locked for as long as it lives, whatever happens to the stager's other
// buffers. Page-locking does not nest: munlock(2) (or unregistering a range with the CUDA driver)
// unlocks every page of its range at once, so a stager that packs small pinned buffers onto shared
// pages and unlocks each buffer's own range when it goes also unlocks the neighbours still in use.
#include <fmt/format.h>

#include <memory>
#include <string>
#include <vector>

#include "../../harness/fixtures.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

constexpr int kPairs = 8;
constexpr std::int64_t kElements = 16;  // 64 bytes: over the pin threshold, many to a page

Tensor small(std::uint64_t seed, Device dev) { return Tensor::random({kElements}, DType::float32, seed, dev); }

// Every kept buffer must still be page-locked and hold its source's values.
void check_kept(CaseContext& ctx, const std::vector<Tensor>& sources, const std::vector<Tensor>& staged,
                std::string_view when) {
  const probe::MemoryMap map = probe::MemoryMap::snapshot();
  for (std::size_t i = 0; i < staged.size(); ++i) {
    const std::string path = fmt::format("keep{}", i);
    const Tensor& t = staged[i];
    const probe::Verdict locked = probe::page_locked(t.storage().data(), t.storage().nbytes(), &map);
    ctx.check(locked.yes, path, "page-locked while alive",
              fmt::format("{}: the staged buffer is no longer page-locked ({})", when, locked.detail));
    ctx.check(Tensor::equal(t, sources[i].to(Device::cpu())), path, "values",
              fmt::format("{}: the staged values changed", when));
  }
}

void pinned_lifetime_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  std::vector<Tensor> keep;
  std::vector<Tensor> go;
  auto first = std::make_shared<Dict>();
  for (int i = 0; i < kPairs; ++i) {  // interleaved, so that a packing stager puts them side by side
    keep.push_back(small(700 + static_cast<std::uint64_t>(i), dev));
    go.push_back(small(800 + static_cast<std::uint64_t>(i), dev));
    first->set(fmt::format("keep{}", i), keep.back());
    first->set(fmt::format("go{}", i), go.back());
  }
  auto stager = ctx.make_stager(stager_config(cfg));
  std::vector<Tensor> kept;
  {
    const Value sd(std::move(first));
    const Value staged = stage_or_fail(ctx, *stager, sd, "the first stage");
    ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
    for (int i = 0; i < kPairs; ++i) kept.push_back(staged[fmt::format("keep{}", i)].as_tensor());
  }
  // Only the `keep` results are held now; the `go` sources die, so their cache entries and buffers may go.
  go.clear();

  // A stage that fails after staging new buffers: it rolls them back.
  {
    auto bad = std::make_shared<Dict>();
    for (int i = 0; i < kPairs; ++i) bad->set(fmt::format("new{}", i), small(900 + static_cast<std::uint64_t>(i), dev));
    bad->set("lock", Value::opaque("threading.Lock"));
    bool raised = false;
    try {
      (void)stager->stage(Value(std::move(bad)));
    } catch (const Error&) {
      raised = true;
    }
    ctx.check(raised, "lock", "bad input rejected", "staging a lock did not raise");
  }
  check_kept(ctx, keep, kept, "after a failed stage rolled its new buffers back");

  // A stage of the kept sources and new ones, after which those new results are dropped.
  {
    auto next = std::make_shared<Dict>();
    for (int i = 0; i < kPairs; ++i) {
      next->set(fmt::format("keep{}", i), keep[static_cast<std::size_t>(i)]);
      next->set(fmt::format("fresh{}", i), small(1000 + static_cast<std::uint64_t>(i), dev));
    }
    const Value sd(std::move(next));
    const Value staged = stage_or_fail(ctx, *stager, sd, "the second stage");
    ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  }
  check_kept(ctx, keep, kept, "after the dead sources' buffers and the second stage's new results went");

  stager->close();
  check_kept(ctx, keep, kept, "after close() (the results are still held)");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(pinned_lifetime) {
  add_matrix(registry, "stays_pinned_while_alive",
             "A staged buffer stays page-locked, with its values, for as long as a result holds it: the stager's "
             "other buffers going (rolled back by a failed stage, dropped with their dead sources or with their "
             "results, or by close()) never unlock it, even where small buffers share a page",
             "strict", Profile::strict, kBothSources, kPinnedConfigs, pinned_lifetime_case);
}

}  // namespace stagekit::conformance
