// measure(): one benchmark's lockstep iterations on every rank (see dist_world.h).
#include "dist_world.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <span>
#include <string>
#include <vector>

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

// The cases of one benchmark run in turn inside each iteration; iteration i starts with case
// i % N (a rotation), so each case runs as often in each position and a case's after-effects
// (page-cache writeback, freed memory) fall on every case alike.
std::vector<Measurement> run_rank(dist::Communicator& comm, const std::vector<CaseFactory>& makes, int iterations) {
  const std::size_t cases = makes.size();
  std::vector<Measurement> out(cases);
  std::vector<std::unique_ptr<RankCase>> rank_cases;
  std::string problem;
  try {
    for (const CaseFactory& make : makes) rank_cases.push_back(make(comm));
  } catch (const Unsupported& e) {
    problem = fmt::format("not_supported: {}", e.what());
  } catch (const std::exception& e) {
    problem = fmt::format("rank {}: setup failed: {}", comm.rank(), e.what());
  }
  const std::string setup_error = first_over_ranks(comm, problem);
  if (!setup_error.empty()) {
    for (Measurement& m : out) m.error = setup_error;
    return out;
  }

  const auto n = static_cast<std::size_t>(iterations);
  std::vector<double> local(n * cases);  // [case][iteration]
  // One untimed warm-up iteration of every case, as nccl-tests does: first-touch page faults and
  // the engines' own connection set-up are not what a steady checkpoint loop pays.
  for (std::size_t c = 0; c < cases; ++c) {
    rank_cases[c]->prepare();
    comm.barrier();
    rank_cases[c]->run(comm);
  }
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t turn = 0; turn < cases; ++turn) {
      const std::size_t c = (i + turn) % cases;
      rank_cases[c]->prepare();
      comm.barrier();
      const auto t0 = Clock::now();
      rank_cases[c]->run(comm);
      local[c * n + i] = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  }
  std::vector<std::string> wrong(cases);
  for (std::size_t c = 0; c < cases; ++c) {
    try {
      wrong[c] = rank_cases[c]->verify();
    } catch (const std::exception& e) {
      wrong[c] = fmt::format("verification threw: {}", e.what());
    }
    if (!wrong[c].empty()) wrong[c] = fmt::format("wrong result: rank {}: {}", comm.rank(), wrong[c]);
  }
  rank_cases.clear();  // free this rank's buffers before the next benchmark

  const std::size_t per_rank = n * cases;
  std::vector<double> all(per_rank * static_cast<std::size_t>(comm.size()));
  comm.all_gather(std::as_bytes(std::span(local)), std::as_writable_bytes(std::span(all)));
  for (std::size_t c = 0; c < cases; ++c) {
    out[c].seconds.assign(n, 0.0);
    for (std::size_t r = 0; r < static_cast<std::size_t>(comm.size()); ++r) {
      for (std::size_t i = 0; i < n; ++i) {
        out[c].seconds[i] = std::max(out[c].seconds[i], all[r * per_rank + c * n + i]);
      }
    }
    out[c].error = first_over_ranks(comm, wrong[c]);
  }
  return out;
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
  const double budget = static_cast<double>(mode == Mode::quick ? 256 * kMiB : 2048 * kMiB);
  return std::clamp(static_cast<int>(budget / static_cast<double>(bytes)), 5, mode == Mode::quick ? 50 : 200);
}

DistContext& dist_context() {
  static DistContext context;
  return context;
}

Measurement measure(const CaseFactory& make, int iterations) { return measure_interleaved({make}, iterations)[0]; }

std::vector<Measurement> measure_interleaved(const std::vector<CaseFactory>& makes, int iterations) {
  DistContext& ctx = dist_context();
  const auto failed = [&](const std::string& error) { return std::vector<Measurement>(makes.size(), {{}, error}); };
  if (ctx.backend == "mpi") {
    if (!ctx.broken.empty()) return failed("the MPI world is unusable after an earlier error: " + ctx.broken);
    try {
      return run_rank(*ctx.mpi, makes, iterations);
    } catch (const std::exception& e) {
      // The ranks may be out of step now: later benchmarks must not start collectives on it.
      ctx.broken = fmt::format("rank {}: {}", ctx.rank, e.what());
      return failed(ctx.broken);
    }
  }
  std::vector<Measurement> rank0;
  try {
    dist::run_thread_world(
        ctx.world_size,
        [&](dist::Communicator& comm) {
          std::vector<Measurement> m = run_rank(comm, makes, iterations);
          if (comm.rank() == 0) rank0 = std::move(m);
        },
        std::chrono::seconds(120));
  } catch (const std::exception& e) {
    return failed(fmt::format("thread world: {}", e.what()));
  }
  return rank0;
}

void require_world(const dist::Communicator& comm, std::string_view backend, std::string_view limit,
                   std::string_view instead) {
  if (comm.backend() == backend) return;
  throw Unsupported(fmt::format("{} measures the {} world's engine{}; this {} world's is {}", limit, backend,
                                backend == "mpi" ? " (run under mpirun)" : "", comm.backend(), instead));
}

}  // namespace stagekit::perf
