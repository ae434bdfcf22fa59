// The replication benchmarks of stagekit-dist-bench (perf/METRICS.md, "Replication benchmarks"); S is
// the bytes of one rank's state dict, every rank pairs with (r + N/2) % N:
//   limit/p2p/<S>            Communicator::send/recv of S bytes each way per pair, chunked as the transport
//   limit/seq_write/<S>      every rank writes and fsyncs a new S-byte file in its replica directory
//   replicate/exchange/<S>   ReplicationStager::stage() with persist = false   (limit: limit/p2p/<S>)
//   replicate/persist/<S>    write_replica(sync) of an S-byte packed state dict (limit: limit/seq_write/<S>)
//   replicate/stage/<S>      ReplicationStager::stage() with persistence       (limit: both, one after
//                            the other: 1 / (1/p2p + 1/seq_write))
// As in dist_bench.cpp: fixed iterations in lockstep (measure()), an iteration's time is the slowest
// rank's, one exact verification per benchmark (a wrong result is an error), algbw = S / time, and
// the ratio to the limits of the same S measured earlier in the same run.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "../driver/dist_world.h"
#include "replication_cases.h"

namespace stagekit::perf {
namespace {

constexpr std::size_t kKiB = 1024;
constexpr std::size_t kMiB = kKiB * kKiB;

struct ReplicationSpec {
  std::string name;
  std::size_t bytes;  // S, as in the name
  std::unique_ptr<RankCase> (*make)(dist::Communicator&, std::size_t);
  std::vector<std::string> limits;  // empty for a limit; several are passed one after the other
};

std::vector<std::size_t> replication_sizes() {
  switch (dist_context().mode) {
    case Mode::smoke: return {64 * kKiB};
    case Mode::quick: return {1 * kMiB, 64 * kMiB};
    case Mode::full: return {1 * kMiB, 64 * kMiB, 1024 * kMiB};
  }
  return {};
}

// The bandwidth of doing the limits' work one after the other (1 / sum of 1/algbw), if all ran.
std::optional<double> serial_limit(const std::vector<std::string>& limits) {
  double seconds_per_byte = 0;
  for (const std::string& name : limits) {
    const auto algbw = limit_table().median(name);
    if (!algbw || *algbw <= 0) return std::nullopt;
    seconds_per_byte += 1.0 / *algbw;
  }
  return 1.0 / seconds_per_byte;
}

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : "+") + name;
  return out;
}

void run_replication_benchmark(benchmark::State& state, const ReplicationSpec& spec) {
  const Measurement m =
      measure([&spec](dist::Communicator& c) { return spec.make(c, spec.bytes); }, fixed_iterations(spec.bytes));
  const std::optional<double> total = report_iterations(state, m);
  if (!total) return;
  const double seconds = *total;
  const double algbw =
      seconds > 0 ? static_cast<double>(spec.bytes) * static_cast<double>(state.iterations()) / seconds : 0;
  state.SetBytesProcessed(static_cast<std::int64_t>(spec.bytes * state.iterations()));
  state.counters["bytes"] = static_cast<double>(spec.bytes);
  state.counters["algbw"] = algbw;
  state.counters["world_size"] = dist_context().world_size;
  state.counters["wrong"] = 0;
  if (spec.limits.empty()) {
    if (algbw > 0) limit_table().record(spec.name, algbw);
    return;
  }
  const std::string label = "limit=" + joined(spec.limits);
  const auto limit = serial_limit(spec.limits);
  if (limit) {
    state.counters["limit_algbw"] = *limit;
    state.counters["ratio_to_limit"] = algbw / *limit;
    state.SetLabel(label);
  } else {
    state.SetLabel(label + " (not measured in this run)");
  }
}

}  // namespace

void register_replication_benchmarks() {
  using namespace replication;
  std::vector<ReplicationSpec> specs;
  const auto sizes = replication_sizes();
  for (const std::size_t s : sizes) {
    specs.push_back({fmt::format("limit/p2p/{}", s), s, make_p2p_limit, {}});
    specs.push_back({fmt::format("limit/seq_write/{}", s), s, make_seq_write_limit, {}});
  }
  for (const std::size_t s : sizes) {
    const std::string p2p = fmt::format("limit/p2p/{}", s);
    const std::string seq_write = fmt::format("limit/seq_write/{}", s);
    specs.push_back({fmt::format("replicate/exchange/{}", s), s, make_exchange, {p2p}});
    specs.push_back({fmt::format("replicate/persist/{}", s), s, make_persist, {seq_write}});
    specs.push_back({fmt::format("replicate/stage/{}", s), s, make_stage, {p2p, seq_write}});
  }
  for (const ReplicationSpec& spec : specs) {
    benchmark::RegisterBenchmark(spec.name.c_str(),
                                 [spec](benchmark::State& state) { run_replication_benchmark(state, spec); })
        ->Iterations(fixed_iterations(spec.bytes))
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace stagekit::perf
