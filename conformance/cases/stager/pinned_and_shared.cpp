// A.1.9 test_tensor_pinned_and_shared, and the strict pinning-threshold cases: memory kinds are
// probed from the OS, never read from the implementation.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <set>
#include <tuple>

#include "../../harness/fixtures.h"
#include "stagekit/core/cuda.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

void pinned_and_shared_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value source = Value::dict({{"tensor1", Tensor::random({4, 4}, DType::float32, 51, dev)},
                                    {"tensor2", Tensor::random({8, 8}, DType::float32, 52, dev)}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "pinned/shared");
  for (const char* key : {"tensor1", "tensor2"}) {
    const Tensor d = staged[key].as_tensor();
    ctx.check(d.device().is_cpu(), key, "device", "staged tensor is on " + d.device().str());
    ctx.check(Tensor::equal(d, source[key].as_tensor()), key, "values", "staged values differ");
  }
  ctx.add_failures(verify_memory_kinds(staged, memory_expectation(cfg)));
}

// Storages below pin_memory_min_bytes are not pinned; those at or above it are.
void threshold_case(CaseContext& ctx, Source src, PinShare cfg, std::size_t threshold) {
  const Device dev = source_device(src);
  auto sd = std::make_shared<Dict>();
  // Byte sizes straddling the threshold: below, at, above; plus a zero-byte storage.
  const std::size_t sizes[] = {threshold > 1 ? threshold - 1 : 1, threshold, threshold + 1, 0};
  for (std::size_t n : sizes)
    sd->set(fmt::format("bytes_{}", n), Tensor::random({static_cast<std::int64_t>(n)}, DType::uint8, n, dev));
  const Value source(sd);
  auto stager = ctx.make_stager(stager_config(cfg, threshold));
  const Value staged = stage_or_fail(ctx, *stager, source, "threshold");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg, threshold)));
}

// With a threshold of 0, zero-byte storages stage like any other (pinning zero bytes must not fail).
Value zero_byte_source(Device dev) {
  return Value::dict({{"empty", Tensor::empty({0}, DType::float32, dev)},
                      {"empty_2d", Tensor::empty({0, 4}, DType::float16, dev)},
                      {"one_byte", Tensor::scalar(1, DType::bool_, dev)}});
}

void zero_byte_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Value source = zero_byte_source(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg, 0));
  const Value staged = stage_or_fail(ctx, *stager, source, "zero-byte storages with pin_memory_min_bytes=0");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg, 0)));
}

// ... and none of them is registered, however many there are. Registering a zero-length range
// fails with CUDA (upstream's ">= threshold" test would try it, spec C.1.5) or, where an allocator
// rounds it up to a page, page-locks a page for nothing. Seen from outside: once the 1-byte storage
// has been staged (and whatever pool its buffer came from made), staging it again next to many
// zero-byte storages grows the bytes this process has page-locked by a few pages at most, not by a
// page each; with a CUDA device, which VmLck does not see, the driver must know no zero-byte staged
// storage's address as registered host memory (unless it lies on the 1-byte storage's page). Where
// cache_stats are declared, their count must agree, and so must their shared bytes with the probe.
constexpr int kZeroByteStorages = 64;
constexpr std::uint64_t kZeroByteAllowedPages = kZeroByteStorages / 4;

void zero_byte_never_registered_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto sd = std::make_shared<Dict>();
  for (int i = 0; i < kZeroByteStorages; ++i)
    sd->set(fmt::format("empty_{}", i), Tensor::empty({0, i % 3 + 1}, DType::float32, dev));
  const Tensor one_byte = Tensor::scalar(1, DType::bool_, dev);
  sd->set("one_byte", one_byte);
  const Value source(sd);
  auto stager = ctx.make_stager(stager_config(cfg, 0));
  (void)stage_or_fail(ctx, *stager, Value::dict({{"one_byte", one_byte}}), "the 1-byte storage alone");
  const std::uint64_t locked_before = probe::locked_bytes();
  const std::uint64_t driver_locked_before = probe::driver_locked_bytes();
  const Value staged = stage_or_fail(ctx, *stager, source, "zero-byte storages with pin_memory_min_bytes=0");
  const std::uint64_t locked_after = probe::locked_bytes();
  const std::uint64_t driver_locked_after = probe::driver_locked_bytes();
  const std::uint64_t page = static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
  // Both views of page-locked memory: VmLck, and the CUDA driver's (cudaHostAlloc, cudaHostRegister).
  for (const auto& [view, from, to] :
       {std::tuple{"VmLck", locked_before, locked_after},
        std::tuple{"the CUDA driver's view", driver_locked_before, driver_locked_after}}) {
    const std::uint64_t grown = to > from ? to - from : 0;
    ctx.check(grown <= kZeroByteAllowedPages * page, "<process>", "never registered",
              fmt::format("page-locked memory ({}) grew by {} KiB ({} pages) when {} zero-byte storages were staged "
                          "with pin_memory_min_bytes=0 next to a 1-byte storage staged before: the zero-byte "
                          "storages were registered (at most {} pages may be)",
                          view, grown / 1024, grown / page, kZeroByteStorages, kZeroByteAllowedPages));
  }
  if (cuda::available()) {
    const auto* one_byte_data = static_cast<const std::byte*>(staged["one_byte"].as_tensor().storage().data());
    const auto same_page = [&](const void* p) {
      return one_byte_data != nullptr &&
             reinterpret_cast<std::uintptr_t>(p) / page == reinterpret_cast<std::uintptr_t>(one_byte_data) / page;
    };
    for (int i = 0; i < kZeroByteStorages; ++i) {
      const std::string key = fmt::format("empty_{}", i);
      const void* p = staged[key].as_tensor().storage().data();
      if (p == nullptr || same_page(p)) continue;
      const probe::Verdict registered = probe::page_locked(p, 1);
      ctx.check(!registered.yes, key, "never registered",
                "the CUDA driver knows the zero-byte staged storage's address as registered host memory: " +
                    registered.detail);
    }
  }
  if (ctx.capabilities().cache_stats) {
    const auto stats = stager->cache_stats();
    ctx.check(
        stats && stats->pinned_bytes == 1, "<stager>", "pinned bytes",
        stats ? fmt::format("cache reports {} pinned bytes; only the 1-byte storage may be pinned", stats->pinned_bytes)
              : "cache_stats() returned nothing although declared");
    // The shared bytes it holds, probed: the 1-byte storage's with share_memory, none without.
    std::uint64_t probed_shared = 0;
    std::set<const void*> counted;
    for (const TensorLeaf& leaf : tensor_leaves(staged)) {
      const Storage& storage = leaf.tensor.storage();
      if (storage.nbytes() == 0 || !counted.insert(storage.data()).second) continue;
      if (probe::shared_mapping(storage.data(), storage.nbytes()).yes) probed_shared += storage.nbytes();
    }
    ctx.check(stats && stats->shared_bytes == probed_shared, "<stager>", "shared bytes",
              stats ? fmt::format("cache reports {} shared bytes; the staged storages probed as shared hold {} "
                                  "(share_memory={})",
                                  stats->shared_bytes, probed_shared, cfg.share)
                    : "cache_stats() returned nothing although declared");
  }
}

// C.1.15, stagekit's choice: without an accelerator, pin_memory still page-locks the staged buffers
// (the operating system's mlock), where upstream warns and stages to pageable memory. A checkpoint
// staged on a CPU-only host is then as safe from paging as on a GPU host.
void pin_without_accelerator_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value source = Value::dict(
      {{"weight", Tensor::random({64, 64}, DType::float32, 71, dev)}, {"step", Tensor::scalar(9, DType::int64, dev)}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "pin_memory without an accelerator");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(pinned_and_shared) {
  add_matrix(registry, "tensor_pinned_and_shared",
             "Staged buffers are page-locked exactly when pin_memory and shared exactly when share_memory (probed)",
             "TestStateDictStager.test_tensor_pinned_and_shared", Profile::upstream, kBothSources, kFourConfigs,
             pinned_and_shared_case);
  add_matrix(registry, "pin_threshold_default",
             "With the default pin_memory_min_bytes=5, 4-byte storages stay pageable and 5-byte ones are pinned",
             "strict", Profile::strict, kBothSources, kPinnedConfigs,
             [](CaseContext& ctx, Source s, PinShare c) { threshold_case(ctx, s, c, 5); });
  add_matrix(registry, "pin_threshold_custom",
             "With pin_memory_min_bytes=4096, storages below 4096 bytes stay pageable and larger ones are pinned",
             "strict", Profile::strict, kBothSources, kPinnedConfigs,
             [](CaseContext& ctx, Source s, PinShare c) { threshold_case(ctx, s, c, 4096); });
  static constexpr Source kCpuOnly[] = {Source::cpu};
  static constexpr PinShare kPinnedOnly[] = {{true, false}};
  add_matrix(registry, "pin_without_accelerator",
             "On a machine without an accelerator, pin_memory still page-locks the staged buffers (stagekit's choice "
             "for spec C.1.15; upstream warns and does not pin)",
             "strict (spec C.1.15)", Profile::strict, kCpuOnly, kPinnedOnly, pin_without_accelerator_case,
             Requirements{.no_cuda_device = true});
  add_matrix(registry, "pin_zero_byte_storages",
             "With pin_memory_min_bytes=0 zero-byte storages stage exactly next to a pinned 1-byte one", "strict",
             Profile::strict, kBothSources, kPinnedConfigs, zero_byte_case);
  add_matrix(registry, "pin_zero_byte_never_registered",
             "With pin_memory_min_bytes=0 none of 64 zero-byte storages is registered: staged next to a 1-byte storage "
             "staged before, they grow page-locked memory by a few pages at most (with CUDA, the driver knows no "
             "zero-byte storage's address; with cache_stats, only 1 pinned byte is counted, and as many shared bytes "
             "as the staged storages probed as shared hold)",
             "strict", Profile::strict, kBothSources, kPinnedConfigs, zero_byte_never_registered_case);
}

}  // namespace stagekit::conformance
