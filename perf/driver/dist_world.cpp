// measure(): one benchmark's lockstep iterations on every rank (see dist_world.h).
#include "dist_world.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <span>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit::perf {
namespace {

using Clock = std::chrono::steady_clock;

// The first non-empty message in rank order ("" when every rank passes ""); collective.
std::string first_over_ranks(dist::Communicator& comm, const std::string& mine) {
  const auto all = comm.all_gather_v(std::as_bytes(std::span(mine.data(), mine.size())));
  for (const auto& message : all) {
    if (!message.empty()) return {reinterpret_cast<const char*>(message.data()), message.size()};
  }
  return {};
}

Measurement run_rank(dist::Communicator& comm, const CaseFactory& make, int iterations) {
  Measurement m;
  std::unique_ptr<RankCase> rank_case;
  std::string problem;
  try {
    rank_case = make(comm);
  } catch (const Unsupported& e) {
    problem = fmt::format("not_supported: {}", e.what());
  } catch (const std::exception& e) {
    problem = fmt::format("rank {}: setup failed: {}", comm.rank(), e.what());
  }
  m.error = first_over_ranks(comm, problem);
  if (!m.error.empty()) return m;

  std::vector<double> local(static_cast<std::size_t>(iterations));
  for (double& seconds : local) {
    rank_case->prepare();
    comm.barrier();
    const auto t0 = Clock::now();
    rank_case->run(comm);
    seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  }
  std::string wrong;
  try {
    wrong = rank_case->verify();
  } catch (const std::exception& e) {
    wrong = fmt::format("verification threw: {}", e.what());
  }
  if (!wrong.empty()) wrong = fmt::format("wrong result: rank {}: {}", comm.rank(), wrong);
  rank_case.reset();  // free this rank's buffers before the next benchmark

  const auto n = static_cast<std::size_t>(iterations);
  std::vector<double> all(n * static_cast<std::size_t>(comm.size()));
  comm.all_gather(std::as_bytes(std::span(local)), std::as_writable_bytes(std::span(all)));
  m.seconds.assign(n, 0.0);
  for (std::size_t r = 0; r < static_cast<std::size_t>(comm.size()); ++r) {
    for (std::size_t i = 0; i < n; ++i) m.seconds[i] = std::max(m.seconds[i], all[r * n + i]);
  }
  m.error = first_over_ranks(comm, wrong);
  return m;
}

}  // namespace

std::optional<double> report_iterations(benchmark::State& state, const Measurement& m) {
  if (!m.error.empty()) {
    if (m.error.rfind("wrong result:", 0) == 0) state.counters["wrong"] = 1;
    state.SkipWithError(m.error.c_str());
    return std::nullopt;
  }
  double seconds = 0;
  std::size_t i = 0;
  for (auto _ : state) {
    const double s = i < m.seconds.size() ? m.seconds[i++] : 0.0;
    state.SetIterationTime(s);
    seconds += s;
  }
  return seconds;
}

int fixed_iterations(std::size_t bytes) {
  const Mode mode = dist_context().mode;
  if (mode == Mode::smoke) return 1;
  constexpr double kMiB = 1024.0 * 1024.0;
  const double budget = mode == Mode::quick ? 256 * kMiB : 2048 * kMiB;
  return std::clamp(static_cast<int>(budget / static_cast<double>(bytes)), 5, mode == Mode::quick ? 50 : 200);
}

DistContext& dist_context() {
  static DistContext context;
  return context;
}

Measurement measure(const CaseFactory& make, int iterations) {
  DistContext& ctx = dist_context();
  if (ctx.backend == "mpi") {
    if (!ctx.broken.empty()) return {{}, "the MPI world is unusable after an earlier error: " + ctx.broken};
    try {
      return run_rank(*ctx.mpi, make, iterations);
    } catch (const std::exception& e) {
      // The ranks may be out of step now: later benchmarks must not start collectives on it.
      ctx.broken = fmt::format("rank {}: {}", ctx.rank, e.what());
      return {{}, ctx.broken};
    }
  }
  Measurement rank0;
  try {
    dist::run_thread_world(
        ctx.world_size,
        [&](dist::Communicator& comm) {
          Measurement m = run_rank(comm, make, iterations);
          if (comm.rank() == 0) rank0 = std::move(m);
        },
        std::chrono::seconds(120));
  } catch (const std::exception& e) {
    return {{}, fmt::format("thread world: {}", e.what())};
  }
  return rank0;
}

}  // namespace stagekit::perf
