// The rank side of stagekit-dist-bench: where the ranks live (one process per rank under an MPI
// launcher, or a thread world of N ranks started inside each benchmark), and measure(), which runs
// one benchmark's iterations on every rank in lockstep the way nccl-tests does: a barrier before
// each timed iteration, each rank times its own call, and the time of an iteration is the maximum
// over the ranks. Every rank therefore reports the same times and takes the same decisions.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bench_context.h"
#include "stagekit/dist/communicator.h"

namespace benchmark {
class State;
}  // namespace benchmark

namespace stagekit::perf {

struct DistContext {
  Mode mode = Mode::full;
  // The implementation under test (--impl); its make_* functions are called from every rank.
  std::unique_ptr<conformance::Implementation> implementation;
  std::string backend = "thread";  // "mpi" (one process per rank) or "thread"
  int world_size = 1;
  int rank = 0;                             // this process's rank (0 for a thread world)
  std::unique_ptr<dist::Communicator> mpi;  // the MPI world, backend "mpi" only
  std::string broken;                       // why the MPI world is unusable (an escaped error), or ""
};

[[nodiscard]] DistContext& dist_context();

// One benchmark on one rank. Made by a CaseFactory on every rank (untimed); then, per iteration,
// prepare() (untimed), a barrier, and the timed run(); verify() checks the last iteration's result.
class RankCase {
 public:
  virtual ~RankCase() = default;
  virtual void prepare() {}
  virtual void run(dist::Communicator& comm) = 0;
  // Empty when the result is exactly the expected one, else what differs.
  [[nodiscard]] virtual std::string verify() = 0;
};

// Throws stagekit::Unsupported when the benchmark cannot run here (it becomes "not_supported: ...").
using CaseFactory = std::function<std::unique_ptr<RankCase>(dist::Communicator& comm)>;

struct Measurement {
  std::vector<double> seconds;  // per iteration: the maximum over the ranks
  // Empty, or the first problem in rank order: "not_supported: ...", "wrong result: rank R: ...",
  // or another error.
  std::string error;
};

// Fixed iteration counts (every rank must run the same ones) for a benchmark moving `bytes` per
// iteration: 1 in smoke mode, else about 256 MiB (quick) or 2 GiB (full) in all, at least 5.
[[nodiscard]] int fixed_iterations(std::size_t bytes);

// Runs the case on every rank of the world (collective under MPI; a fresh thread world otherwise).
[[nodiscard]] Measurement measure(const CaseFactory& make, int iterations);

// Like measure(), for several cases made together and run in turn inside each iteration (each with
// its own prepare() and barrier; iteration i starts with case i % N), so that a slow drift of the
// machine (page-cache writeback, a neighbour's load) reaches all of them alike: a benchmark and its
// limit measured this way give a ratio free of the drift between two separate benchmarks. One
// Measurement per case, in the order of `makes`; a setup error is every case's error.
[[nodiscard]] std::vector<Measurement> measure_interleaved(const std::vector<CaseFactory>& makes, int iterations);

// Hands a measurement to Google Benchmark: an error becomes SkipWithError (a wrong result also sets
// the counter "wrong"), otherwise each iteration gets its measured time. Returns the total seconds,
// or nullopt after an error.
[[nodiscard]] std::optional<double> report_iterations(benchmark::State& state, const Measurement& m);

// A limit that measures one world's engine ("mpi": the processes of mpirun, "thread": a thread
// world's shared memory) throws Unsupported in the other world, naming the limit measured there
// instead.
void require_world(const dist::Communicator& comm, std::string_view backend, std::string_view limit,
                   std::string_view instead);

void register_dist_benchmarks();
void register_replication_benchmarks();  // perf/bench/replication_bench.cpp

}  // namespace stagekit::perf
