// stage/<src>_to_<dst>/<layout>/<cold|warm>: one stage() of a state dict through the adapter
// interface, timed manually (CUDA sources with CUDA events), verified byte for byte, and reported
// with its ratio to the matching limit measured earlier in the same run.
//   cold: a new stager per iteration (allocation, page faults, pinning included), after one
//         untimed cold stage
//   warm: one stager, re-staging into its cached buffers
// Before every iteration one byte of each source storage changes, so a stager that skips copies on a
// re-stage is caught by the verification.
#include <chrono>
#include <cstring>
#include <optional>
#include <string>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "../driver/bench_context.h"
#include "../driver/bench_registry.h"
#include "stagekit/core/cuda.h"
#include "state_dicts.h"
#include "verify/verify.h"

namespace stagekit::perf {
namespace {

using Clock = std::chrono::steady_clock;

constexpr MemoryKind kDestinations[] = {MemoryKind::pageable, MemoryKind::pinned, MemoryKind::shared,
                                        MemoryKind::pinned_shared};

struct StageSpec {
  bool cuda_source;
  MemoryKind destination;
  Layout layout;
  bool warm;
};

// Writes `stamp` into the first byte of each source storage (on a device: of the first one only).
void stamp_sources(const StateDictFixture& f, unsigned char stamp) {
  for (const Storage& s : f.storages) {
    if (s.nbytes() == 0) continue;
    if (s.device().is_cpu()) {
      *static_cast<unsigned char*>(s.data()) = stamp;
    } else {
      cuda::memcpy_sync(s.data(), &stamp, 1);
      return;
    }
  }
}

// Empty when the staged tree holds exact copies of every source storage with the same layouts.
std::string verify(const Value& source, const Value& staged) {
  const auto src = conformance::tensor_leaves(source);
  const auto dst = conformance::tensor_leaves(staged);
  if (src.size() != dst.size()) return fmt::format("{} tensors staged, {} in the source", dst.size(), src.size());
  std::unordered_map<const void*, const void*> checked;
  std::vector<unsigned char> host;
  for (std::size_t i = 0; i < src.size(); ++i) {
    const Tensor& s = src[i].tensor;
    const Tensor& d = dst[i].tensor;
    if (!d.device().is_cpu()) return src[i].path + ": staged tensor is not on the cpu";
    if (s.dtype() != d.dtype() || s.storage_offset() != d.storage_offset() ||
        !std::equal(s.sizes().begin(), s.sizes().end(), d.sizes().begin(), d.sizes().end()) ||
        !std::equal(s.strides().begin(), s.strides().end(), d.strides().begin(), d.strides().end())) {
      return src[i].path + ": layout differs: " + s.describe() + " vs " + d.describe();
    }
    const Storage& ss = s.storage();
    const Storage& ds = d.storage();
    auto [it, first] = checked.emplace(ss.identity(), ds.identity());
    if (!first) {
      if (it->second != ds.identity()) return src[i].path + ": storage sharing lost";
      continue;
    }
    if (ss.nbytes() != ds.nbytes()) return src[i].path + ": staged storage has a different size";
    if (ss.nbytes() == 0) continue;
    const void* source_bytes = ss.data();
    if (!ss.device().is_cpu()) {
      host.resize(ss.nbytes());
      cuda::memcpy_sync(host.data(), ss.data(), ss.nbytes());
      source_bytes = host.data();
    }
    if (std::memcmp(source_bytes, ds.data(), ss.nbytes()) != 0) return src[i].path + ": staged bytes differ";
  }
  return {};
}

// Times one stage() call in seconds. A stager that converts the state dict for another framework
// (conformance::SplitStage) is timed on its own call only; its conversions, each way, are added to
// `conversion`.
struct ConversionSeconds {
  double to = 0;    // the state dict into the stager's framework
  double back = 0;  // the staged result back
};

double timed_stage(conformance::StagerUnderTest& stager, const Value& sd, bool cuda_source, Value& out,
                   ConversionSeconds& conversion) {
  if (auto* split = dynamic_cast<conformance::SplitStage*>(&stager)) {
    const auto c0 = Clock::now();
    const std::unique_ptr<conformance::PreparedStage> call = split->prepare(sd);
    const auto t0 = Clock::now();
    call->run();  // synchronises its device itself
    const auto t1 = Clock::now();
    out = call->result();
    conversion.to += std::chrono::duration<double>(t0 - c0).count();
    conversion.back += std::chrono::duration<double>(Clock::now() - t1).count();
    return std::chrono::duration<double>(t1 - t0).count();
  }
  if (!cuda_source) {
    const auto t0 = Clock::now();
    out = stager.stage(sd);
    return std::chrono::duration<double>(Clock::now() - t0).count();
  }
  cuda::Event start(true);
  cuda::Event stop(true);
  start.record(cuda::current_stream());
  out = stager.stage(sd);
  stop.record(cuda::current_stream());
  stop.synchronize();
  return stop.elapsed_ms_since(start) / 1e3;
}

void run_stage_unguarded(benchmark::State& state, const StageSpec& spec) {
  if (spec.cuda_source && !cuda::available()) {
    state.SkipWithError(("not_supported: " + cuda::availability().reason).c_str());
    return;
  }
  BenchContext& ctx = bench_context();
  const auto caps = ctx.implementation->capabilities();
  if (spec.cuda_source && !caps.cuda_sources) {
    state.SkipWithError("not_supported: the implementation does not declare the cuda_sources capability");
    return;
  }
  const StateDictFixture& f = fixture(spec.layout, spec.cuda_source ? Device::cuda(0) : Device::cpu());
  const conformance::StagerConfig config{is_pinned_kind(spec.destination), is_shared_kind(spec.destination), 5};
  if ((config.pin_memory && !caps.pin_memory) || (config.share_memory && !caps.share_memory)) {
    state.SkipWithError("not_supported: the implementation does not declare this destination's capability");
    return;
  }

  std::unique_ptr<conformance::StagerUnderTest> stager;
  Value staged;
  if (spec.warm) {
    stager = ctx.implementation->make_stager(config);
    staged = stager->stage(f.state_dict);
  } else {
    // One untimed cold stage first, as the fresh-memory limits do: measured rounds then get memory
    // the OS has just released instead of memory this process never touched.
    stager = ctx.implementation->make_stager(config);
    staged = stager->stage(f.state_dict);
    staged = Value();
    stager.reset();
  }
  double seconds = 0;
  ConversionSeconds conversion;
  unsigned char stamp = 0;
  bool verified_first = false;
  for (auto _ : state) {
    if (!spec.warm) {
      staged = Value();  // the previous iteration's buffers go before the next stager is made
      stager = ctx.implementation->make_stager(config);
    }
    stamp_sources(f, ++stamp);
    staged = Value();  // dropping the previous result is the caller's business, not the stage's
    const double s = timed_stage(*stager, f.state_dict, spec.cuda_source, staged, conversion);
    state.SetIterationTime(s);
    seconds += s;
    if (!verified_first) {
      verified_first = true;
      if (const std::string wrong = verify(f.state_dict, staged); !wrong.empty()) {
        state.counters["wrong"] = 1;
        state.SkipWithError(("wrong result: " + wrong).c_str());
        return;
      }
    }
  }
  if (const std::string wrong = verify(f.state_dict, staged); !wrong.empty()) {
    state.counters["wrong"] = 1;
    state.SkipWithError(("wrong result: " + wrong).c_str());
    return;
  }

  const auto iterations = static_cast<double>(state.iterations());
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * f.bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.tensors));
  state.counters["bytes"] = static_cast<double>(f.bytes);
  state.counters["tensors"] = static_cast<double>(f.tensors);
  state.counters["wrong"] = 0;
  if (conversion.to + conversion.back > 0) {
    // Outside the clock: what converting to the stager's framework and back cost, per tensor.
    const double per_tensor = 1e9 / iterations / static_cast<double>(f.tensors);
    state.counters["conversion_ns_per_tensor"] = (conversion.to + conversion.back) * per_tensor;
    state.counters["conversion_to_ns_per_tensor"] = conversion.to * per_tensor;
    state.counters["conversion_back_ns_per_tensor"] = conversion.back * per_tensor;
  }
  const std::string limit = matching_limit(spec.cuda_source, spec.destination, spec.warm);
  const std::optional<double> limit_bps = limit_table().median(limit);
  if (limit_bps && seconds > 0) {
    const double per_stage = seconds / iterations;
    state.counters["limit_bytes_per_second"] = *limit_bps;
    state.counters["ratio_to_limit"] = static_cast<double>(f.bytes) / per_stage / *limit_bps;
    state.counters["overhead_ns_per_tensor"] =
        (per_stage - static_cast<double>(f.bytes) / *limit_bps) / static_cast<double>(f.tensors) * 1e9;
    state.SetLabel("limit=" + limit);
  } else {
    state.SetLabel("limit=" + limit + " (not measured in this run)");
  }
}

// A stage that raises is this benchmark's error, not the end of the run.
void run_stage(benchmark::State& state, const StageSpec& spec) {
  try {
    run_stage_unguarded(state, spec);
  } catch (const std::exception& e) {
    state.SkipWithError(fmt::format("stage failed: {}", e.what()).c_str());
  }
}

const char* destination_name(MemoryKind k) { return memory_kind_name(k).data(); }

}  // namespace

void register_stage_benchmarks() {
  for (bool cuda_source : {false, true}) {
    for (Layout layout : kLayouts) {
      for (MemoryKind dst : kDestinations) {
        for (bool warm : {false, true}) {
          const StageSpec spec{cuda_source, dst, layout, warm};
          const std::string name = fmt::format("stage/{}_to_{}/{}/{}", cuda_source ? "cuda" : "cpu",
                                               destination_name(dst), layout_name(layout), warm ? "warm" : "cold");
          auto* b = benchmark::RegisterBenchmark(name.c_str(), [spec](benchmark::State& s) { run_stage(s, spec); });
          b->UseManualTime()->Unit(benchmark::kMillisecond);
        }
      }
    }
  }
}

}  // namespace stagekit::perf
