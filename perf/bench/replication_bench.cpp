// The replication benchmarks of stagekit-dist-bench (perf/METRICS.md, "Replication benchmarks"); S is
// the bytes of one rank's state dict, every rank pairs with (r + N/2) % N:
//   limit/mpi_sendrecv/<S>   MPI_Isend/MPI_Irecv of S bytes each way per pair, at once (MPI world)
//   limit/memcpy_exchange/<S> every rank copies its partner's S bytes (thread world)
//   limit/seq_write/<S>      every rank writes and fsyncs a new S-byte file in its replica directory
//   replicate/exchange/<S>   the reference's ReplicationStager::stage() with persist = false
//                            (limit: the world's exchange engine of S; reference only)
//   replicate/persist/<S>    the reference's write_replica(sync) of an S-byte packed state dict
//                            (limit: limit/seq_write/<S>; reference only)
//   replicate/stage/<S>      the implementation's replication stager, stage() with persistence,
//                            through the adapter (limit: both, one after the other:
//                            1 / (1/p2p + 1/seq_write))
// As in dist_bench.cpp: fixed iterations in lockstep (measure()), an iteration's time is the slowest
// rank's, one exact verification per benchmark (a wrong result is an error), algbw = S / time. Each
// replicate/* benchmark runs interleaved with its limits of the same S (measure_interleaved()), and
// its ratio_to_limit divides by the limits measured in those same iterations, so that the drift of a
// noisy disk or an oversubscribed machine between two benchmarks does not enter the ratio. The
// limit/* rows are the limits measured on their own.
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

using MakeCase = std::unique_ptr<RankCase> (*)(dist::Communicator&, std::size_t);

struct LimitSpec {
  std::string name;  // limit/<what>/<S>, the limit's own row
  MakeCase make;
};

struct ReplicationSpec {
  std::string name;
  std::size_t bytes;  // S, as in the name
  MakeCase make;
  std::vector<LimitSpec> limits;  // empty for a limit; several are done one after the other
};

std::vector<std::size_t> replication_sizes() {
  switch (dist_context().mode) {
    case Mode::smoke: return {64 * kKiB};
    case Mode::quick: return {1 * kMiB, 64 * kMiB};
    case Mode::full: return {1 * kMiB, 64 * kMiB, 1024 * kMiB};
  }
  return {};
}

std::string joined(const std::vector<LimitSpec>& limits) {
  std::string out;
  for (const LimitSpec& limit : limits) out += (out.empty() ? "" : "+") + limit.name;
  return out;
}

// Google Benchmark's view of one measured case: its iteration times and the common counters.
// Returns algbw, or nullopt after an error.
std::optional<double> report_case(benchmark::State& state, const ReplicationSpec& spec, const Measurement& m) {
  const std::optional<double> total = report_iterations(state, m);
  if (!total) return std::nullopt;
  const double algbw =
      *total > 0 ? static_cast<double>(spec.bytes) * static_cast<double>(state.iterations()) / *total : 0;
  state.SetBytesProcessed(static_cast<std::int64_t>(spec.bytes * state.iterations()));
  state.counters["bytes"] = static_cast<double>(spec.bytes);
  state.counters["algbw"] = algbw;
  state.counters["world_size"] = dist_context().world_size;
  state.counters["wrong"] = 0;
  return algbw;
}

// A limit on its own, for its own row (the replicate/* rows measure theirs again, interleaved).
void run_limit(benchmark::State& state, const ReplicationSpec& spec) {
  const Measurement m =
      measure([&spec](dist::Communicator& c) { return spec.make(c, spec.bytes); }, fixed_iterations(spec.bytes));
  (void)report_case(state, spec, m);
}

// A replication benchmark interleaved with its limits (measure_interleaved: the benchmark, then
// each limit, rotating the order every iteration). Its limit_algbw is S * iterations over the
// limits' total time: the bandwidth of doing the limits' work one after the other.
void run_replication_benchmark(benchmark::State& state, const ReplicationSpec& spec) {
  std::vector<CaseFactory> makes{[&spec](dist::Communicator& c) { return spec.make(c, spec.bytes); }};
  for (const LimitSpec& limit : spec.limits) {
    makes.emplace_back([limit, &spec](dist::Communicator& c) { return limit.make(c, spec.bytes); });
  }
  const std::vector<Measurement> all = measure_interleaved(makes, fixed_iterations(spec.bytes));
  if (!report_case(state, spec, all.front())) return;
  std::string label = "limit=" + joined(spec.limits);
  double limit_seconds = 0;
  for (std::size_t i = 1; i < all.size(); ++i) {
    if (!all[i].error.empty()) {
      state.SetLabel(fmt::format("{} (the limit failed: {})", label, all[i].error));
      return;
    }
    for (const double s : all[i].seconds) limit_seconds += s;
  }
  if (limit_seconds <= 0) {
    state.SetLabel(label + " (the limit took no time)");
    return;
  }
  const double iterations = static_cast<double>(all.front().seconds.size());
  const double limit = static_cast<double>(spec.bytes) * iterations / limit_seconds;
  state.counters["limit_algbw"] = limit;
  state.counters["ratio_to_limit"] = state.counters["algbw"].value / limit;
  state.SetLabel(label);
}

}  // namespace

void register_replication_benchmarks() {
  using namespace replication;
  std::vector<ReplicationSpec> specs;
  const auto sizes = replication_sizes();
  for (const std::size_t s : sizes) {
    specs.push_back({fmt::format("limit/mpi_sendrecv/{}", s), s, make_mpi_sendrecv_limit, {}});
    specs.push_back({fmt::format("limit/memcpy_exchange/{}", s), s, make_memcpy_exchange_limit, {}});
    specs.push_back({fmt::format("limit/seq_write/{}", s), s, make_seq_write_limit, {}});
  }
  // The exchange is divided by the engine beneath it: MPI under mpirun, memory copies in a thread world.
  const bool mpi = dist_context().backend == "mpi";
  for (const std::size_t s : sizes) {
    const LimitSpec engine = mpi ? LimitSpec{fmt::format("limit/mpi_sendrecv/{}", s), make_mpi_sendrecv_limit}
                                 : LimitSpec{fmt::format("limit/memcpy_exchange/{}", s), make_memcpy_exchange_limit};
    const LimitSpec seq_write{fmt::format("limit/seq_write/{}", s), make_seq_write_limit};
    specs.push_back({fmt::format("replicate/exchange/{}", s), s, make_exchange, {engine}});
    specs.push_back({fmt::format("replicate/persist/{}", s), s, make_persist, {seq_write}});
    specs.push_back({fmt::format("replicate/stage/{}", s), s, make_stage, {engine, seq_write}});
  }
  for (const ReplicationSpec& spec : specs) {
    benchmark::RegisterBenchmark(spec.name.c_str(),
                                 [spec](benchmark::State& state) {
                                   if (spec.limits.empty()) {
                                     run_limit(state, spec);
                                   } else {
                                     run_replication_benchmark(state, spec);
                                   }
                                 })
        ->Iterations(fixed_iterations(spec.bytes))
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace stagekit::perf
