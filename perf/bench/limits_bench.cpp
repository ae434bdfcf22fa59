// The physical limits every stage benchmark is compared with, measured in the same run:
//   limit/memcpy_prefaulted/threads:N      memcpy between touched buffers (1 thread and the copy threads)
//   limit/memcpy_prefaulted_shared/threads:N  the same into touched shared (memfd) memory
//   limit/memcpy_fresh/threads:N           memcpy into fresh 4 KiB pages (page faults included)
//   limit/memcpy_fresh_thp/threads:N       memcpy into fresh memory with transparent huge pages
//   limit/alloc_copy_fresh/<kind>/threads:N  make fresh pinned / shared / pinned_shared memory and copy
//   limit/mlock_per_gib                    page-locking fresh memory (bytes/s; seconds_per_gib counter)
//   limit/cuda_*                           CUDA host registration, cudaHostAlloc, D2H copies (GPU only)
#include <algorithm>
#include <chrono>
#include <string>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "../driver/bench_context.h"
#include "../driver/bench_registry.h"
#include "host_memory.h"
#include "stagekit/core/cuda.h"

namespace stagekit::perf {
namespace {

using Clock = std::chrono::steady_clock;

std::size_t limit_bytes() {
  switch (bench_context().mode) {
    case Mode::smoke: return std::size_t{8} << 20;
    case Mode::quick:
    case Mode::full: return std::size_t{1} << 30;
  }
  return std::size_t{1} << 30;
}

void finish(benchmark::State& state, std::size_t bytes) {
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["bytes"] = static_cast<double>(bytes);
}

void memcpy_prefaulted(benchmark::State& state, std::size_t threads, bool shared_destination) {
  const std::size_t n = limit_bytes();
  Mapping src = map_private(n, true);
  Mapping dst = shared_destination ? map_shared(n) : map_private(n, true);
  prefault(src);
  prefault(dst);
  for (auto _ : state) {
    const auto t0 = Clock::now();
    parallel_memcpy(dst.data(), src.data(), n, threads);
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  finish(state, n);
}

// Fresh destination memory per iteration: the page faults (or pinning, or shared-memory
// allocation) are part of what is measured; unmapping is not.
enum class Fresh { small_pages, huge_pages, pinned, shared, pinned_shared };

Mapping fresh_mapping(Fresh kind, std::size_t n) {
  switch (kind) {
    case Fresh::small_pages: return map_private(n, false);
    case Fresh::huge_pages: return map_private(n, true);
    case Fresh::pinned: {
      Mapping m = map_private(n, true);
      lock(m);
      return m;
    }
    case Fresh::shared: return map_shared(n);
    case Fresh::pinned_shared: {
      Mapping m = map_shared(n);
      lock(m);
      return m;
    }
  }
  return {};
}

// Each iteration reports the best of kRounds allocate-and-copy rounds: a limit is what the simple
// code can do, and on a shared or virtual machine single rounds of fresh memory vary widely.
constexpr int kRounds = 3;

void copy_into_fresh(benchmark::State& state, Fresh kind, std::size_t threads) {
  const std::size_t n = limit_bytes();
  Mapping src = map_private(n, true);
  prefault(src);
  for (auto _ : state) {
    double best = 0;
    for (int round = 0; round < kRounds; ++round) {
      const auto t0 = Clock::now();
      Mapping dst = fresh_mapping(kind, n);
      parallel_memcpy(dst.data(), src.data(), n, threads);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      best = round == 0 ? s : std::min(best, s);
    }
    state.SetIterationTime(best);
  }
  finish(state, n);
}

void mlock_per_gib(benchmark::State& state) {
  const std::size_t n = limit_bytes();
  double total = 0;
  for (auto _ : state) {
    double best = 0;
    for (int round = 0; round < kRounds; ++round) {
      Mapping m = map_private(n, true);
      const auto t0 = Clock::now();
      lock(m);
      const double s = std::chrono::duration<double>(Clock::now() - t0).count();
      best = round == 0 ? s : std::min(best, s);
    }
    state.SetIterationTime(best);
    total += best;
  }
  finish(state, n);
  state.counters["seconds_per_gib"] =
      total / static_cast<double>(state.iterations()) * static_cast<double>(1U << 30) / static_cast<double>(n);
}

bool skip_without_cuda(benchmark::State& state) {
  if (cuda::available()) return false;
  state.SkipWithError(("not_supported: " + cuda::availability().reason).c_str());
  return true;
}

void cuda_host_register_per_gib(benchmark::State& state) {
  if (skip_without_cuda(state)) return;
  const std::size_t n = limit_bytes();
  for (auto _ : state) {
    Mapping m = map_private(n, true);
    prefault(m);
    const auto t0 = Clock::now();
    cuda::host_register(m.data(), n);
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    cuda::host_unregister(m.data());
  }
  finish(state, n);
}

void cuda_host_alloc_per_gib(benchmark::State& state) {
  if (skip_without_cuda(state)) return;
  const std::size_t n = limit_bytes();
  for (auto _ : state) {
    const auto t0 = Clock::now();
    void* p = cuda::host_alloc(n);
    state.SetIterationTime(std::chrono::duration<double>(Clock::now() - t0).count());
    cuda::host_free(p);
  }
  finish(state, n);
}

// Device-to-host bandwidth of one large cudaMemcpyAsync into pinned or pageable memory.
void cuda_d2h(benchmark::State& state, bool pinned) {
  if (skip_without_cuda(state)) return;
  const std::size_t n = limit_bytes();
  void* device = cuda::device_malloc(0, n);
  Mapping pageable = map_private(n, true);
  prefault(pageable);
  void* host = pinned ? cuda::host_alloc(n) : pageable.data();
  cuda::Stream stream(0);
  cuda::Event start(true);
  cuda::Event stop(true);
  for (auto _ : state) {
    start.record(stream.handle());
    cuda::memcpy_async(host, device, n, stream.handle());
    stop.record(stream.handle());
    stop.synchronize();
    state.SetIterationTime(stop.elapsed_ms_since(start) / 1e3);
  }
  if (pinned) cuda::host_free(host);
  cuda::device_free(device);
  finish(state, n);
}

}  // namespace

void register_limit_benchmarks() {
  const std::size_t t = bench_context().copy_threads;
  auto add = [](const std::string& name, auto fn) {
    return benchmark::RegisterBenchmark(name.c_str(), fn)->UseManualTime()->Unit(benchmark::kMillisecond);
  };
  for (std::size_t threads : {std::size_t{1}, t}) {
    add(fmt::format("limit/memcpy_prefaulted/threads:{}", threads),
        [threads](benchmark::State& s) { memcpy_prefaulted(s, threads, false); });
    if (t == 1) break;
  }
  add(fmt::format("limit/memcpy_prefaulted_shared/threads:{}", t),
      [t](benchmark::State& s) { memcpy_prefaulted(s, t, true); });
  add(fmt::format("limit/memcpy_fresh_thp/threads:{}", t),
      [t](benchmark::State& s) { copy_into_fresh(s, Fresh::huge_pages, t); });
  add(fmt::format("limit/memcpy_fresh/threads:{}", t),
      [t](benchmark::State& s) { copy_into_fresh(s, Fresh::small_pages, t); });
  add(fmt::format("limit/alloc_copy_fresh/pinned/threads:{}", t),
      [t](benchmark::State& s) { copy_into_fresh(s, Fresh::pinned, t); });
  add(fmt::format("limit/alloc_copy_fresh/shared/threads:{}", t),
      [t](benchmark::State& s) { copy_into_fresh(s, Fresh::shared, t); });
  add(fmt::format("limit/alloc_copy_fresh/pinned_shared/threads:{}", t),
      [t](benchmark::State& s) { copy_into_fresh(s, Fresh::pinned_shared, t); });
  add("limit/mlock_per_gib", mlock_per_gib);
  add("limit/cuda_host_register_per_gib", cuda_host_register_per_gib);
  add("limit/cuda_host_alloc_per_gib", cuda_host_alloc_per_gib);
  add("limit/cuda_d2h_pinned", [](benchmark::State& s) { cuda_d2h(s, true); });
  add("limit/cuda_d2h_pageable", [](benchmark::State& s) { cuda_d2h(s, false); });
}

std::string matching_limit(bool cuda_source, MemoryKind destination, bool warm) {
  const std::size_t t = bench_context().copy_threads;
  if (cuda_source) return is_pinned_kind(destination) ? "limit/cuda_d2h_pinned" : "limit/cuda_d2h_pageable";
  if (warm) {
    // Shared memory follows the kernel's shmem huge-page policy, so its limit is measured on it.
    return is_shared_kind(destination) ? fmt::format("limit/memcpy_prefaulted_shared/threads:{}", t)
                                       : fmt::format("limit/memcpy_prefaulted/threads:{}", t);
  }
  switch (destination) {
    case MemoryKind::pageable: return fmt::format("limit/memcpy_fresh_thp/threads:{}", t);
    case MemoryKind::pinned: return fmt::format("limit/alloc_copy_fresh/pinned/threads:{}", t);
    case MemoryKind::shared: return fmt::format("limit/alloc_copy_fresh/shared/threads:{}", t);
    case MemoryKind::pinned_shared: return fmt::format("limit/alloc_copy_fresh/pinned_shared/threads:{}", t);
    case MemoryKind::device: break;
  }
  return {};
}

}  // namespace stagekit::perf
