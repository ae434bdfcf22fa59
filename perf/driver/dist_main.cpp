// stagekit-dist-bench: the distributed state-dict utilities (gather_state_dict, distribute_tensors)
// of the implementation under test next to an all-gather and a memcpy of the same bytes, and
// replication (its replication stager; the reference's exchange and persist steps) next to
// point-to-point and sequential-write limits, all measured in the same run.
//   mpirun -np N stagekit-dist-bench ...   every process is one rank of the MPI world; only rank 0
//                                           prints and writes --benchmark_out
//   stagekit-dist-bench ...                 each benchmark runs a thread world of
//                                           --stagekit_world_size ranks inside this process
// Flags: --impl SPEC (the implementation measured, loaded like stagekit-conform's: reference, or a
// plugin .so; default $STAGEKIT_IMPL, else reference), --stagekit_mode=smoke|quick|full (default
// full), --stagekit_world_size=N (thread world, default 4), --stagekit_replica_dir=DIR (where
// replication writes; default the system temporary directory), and Google Benchmark's own. Under
// mpirun every rank loads the implementation itself. Limit benchmarks always run (a filter is
// widened to include them) and run first, so that every dist benchmark can report its ratio to them.
#include <chrono>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "../bench/nccl_cases.h"
#include "dist_world.h"
#include "implementation_option.h"
#include "replica_dir.h"
#include "stagekit/loader/environment.h"

namespace {

using stagekit::perf::Mode;

void print_help() {
  std::cout
      << "stagekit-dist-bench: gather_state_dict and distribute_tensors next to the all-gather and\n"
         "memcpy limits, and replication (the replication stager's stage, and the reference's exchange\n"
         "and write_replica) next to the point-to-point and sequential-write limits, all measured in the\n"
         "same run (perf/METRICS.md, \"Distributed benchmarks\" and \"Replication benchmarks\").\n"
         "\n"
         "  mpirun -np N stagekit-dist-bench [flags]  one rank per process (rank 0 reports)\n"
         "  stagekit-dist-bench [flags]               a thread world inside each benchmark\n"
         "\n"
      << stagekit::perf::impl_flag_help()
      << "  --stagekit_mode=smoke|quick|full  smoke: tiny sizes, one iteration (tests); quick: short runs\n"
         "                                    (main job); full: the largest sizes (default)\n"
         "  --stagekit_world_size=N           ranks of the thread world (default 4; ignored under MPI)\n"
         "  --stagekit_replica_dir=DIR        where limit/seq_write, replicate/persist and replicate/stage\n"
         "                                    write (default: the system temporary directory); each\n"
         "                                    process makes DIR/stagekit-replica-bench-XXXXXX/rank_<r>\n"
         "                                    and removes it at exit\n"
         "\n"
         "Names: limit/<what>/<bytes>, dist/gather_state_dict/<layout>/<bytes>, dist/distribute_tensors/<bytes>,\n"
         "dist/broadcast[_state_dict]/..., replicate/{exchange,persist,stage}/<bytes>; on CUDA devices with\n"
         "NCCL (mpirun, one GPU per rank) limit/nccl_*, dist/nccl_* and dist/gather_state_dict_cuda/...\n"
         "MPI support: "
      << (stagekit::dist::mpi_compiled() ? "yes" : "no (this build runs thread worlds only)")
      << "\n\nGoogle Benchmark flags:\n";
  benchmark::PrintDefaultHelp();
}

// Prints nothing: the reporter of every rank but 0.
class SilentReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

bool starts_with(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Removes the --stagekit_* flags from argv; false (with a message) on a bad value.
bool take_own_flags(int& argc, char** argv, Mode& mode, int& world_size, std::string& replica_dir) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (starts_with(arg, "--stagekit_mode=")) {
      const std::string v = arg.substr(16);
      if (const std::optional<Mode> named = stagekit::perf::mode_from_name(v)) {
        mode = *named;
      } else {
        std::cerr << "stagekit-dist-bench: --stagekit_mode must be smoke, quick or full (got '" << v << "')\n";
        return false;
      }
    } else if (starts_with(arg, "--stagekit_world_size=")) {
      try {
        world_size = std::stoi(arg.substr(22));
      } catch (const std::exception&) {
        world_size = 0;
      }
      if (world_size < 1 || world_size > 256) {
        std::cerr << "stagekit-dist-bench: --stagekit_world_size must be 1..256 (got '" << arg.substr(22) << "')\n";
        return false;
      }
    } else if (starts_with(arg, "--stagekit_replica_dir=")) {
      replica_dir = arg.substr(23);
      if (replica_dir.empty()) {
        std::cerr << "stagekit-dist-bench: --stagekit_replica_dir needs a directory\n";
        return false;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return true;
}

// What Google Benchmark sees: a filter widened to (X)|^limit/, and on ranks other than 0 no
// --benchmark_out (only rank 0 writes the file). Random interleaving is refused: it would run dist
// benchmarks before their limits, and under MPI in a different order on each rank.
bool benchmark_args(int argc, char** argv, int rank, std::vector<std::string>& args) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (starts_with(a, "--benchmark_enable_random_interleaving") &&
        a != "--benchmark_enable_random_interleaving=false") {
      std::cerr << "stagekit-dist-bench: --benchmark_enable_random_interleaving is not supported (the ranks "
                   "must run the same benchmarks in the same order, limits first)\n";
      return false;
    }
    if (rank != 0 && (starts_with(a, "--benchmark_out=") || starts_with(a, "--benchmark_out_format="))) continue;
    if (starts_with(a, "--benchmark_filter=")) a = "--benchmark_filter=(" + a.substr(19) + ")|^limit/";
    args.push_back(std::move(a));
  }
  return true;
}

void add_context(const stagekit::perf::DistContext& ctx, const stagekit::perf::MeasuredImplementation& measured,
                 const nlohmann::json& env) {
  stagekit::perf::add_common_context(measured, env);
  benchmark::AddCustomContext("mode", stagekit::perf::mode_name(ctx.mode));
  benchmark::AddCustomContext("world_backend", ctx.backend);
  benchmark::AddCustomContext("world_size", std::to_string(ctx.world_size));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_help();
      return 0;
    }
  }
  namespace dist = stagekit::dist;
  auto& ctx = stagekit::perf::dist_context();
  int thread_world_size = 4;
  std::string replica_dir;
  std::string impl;
  if (!stagekit::perf::take_impl_flag("stagekit-dist-bench", argc, argv, impl)) return 2;
  if (!take_own_flags(argc, argv, ctx.mode, thread_world_size, replica_dir)) return 2;
  auto measured = stagekit::perf::load_measured_implementation("stagekit-dist-bench", impl);
  if (!measured) return 2;
  stagekit::perf::set_replica_root(replica_dir);
  const auto env = stagekit::conformance::describe_environment();  // runs git: before MPI starts
  if (dist::launched_by_mpi()) {
    if (!dist::mpi_compiled()) {
      std::cerr << "stagekit-dist-bench: started by an MPI launcher, but this build has no MPI "
                   "(configure with -DSTAGEKIT_WITH_MPI=ON); run it without mpirun for a thread world\n";
      return 2;
    }
    ctx.mpi = dist::mpi_world();
    ctx.mpi->set_timeout(std::chrono::seconds(120));
    ctx.backend = "mpi";
    ctx.world_size = ctx.mpi->size();
    ctx.rank = ctx.mpi->rank();
  } else {
    ctx.world_size = thread_world_size;
  }

  std::vector<std::string> args;
  if (!benchmark_args(argc, argv, ctx.rank, args)) return 2;
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  int cargc = static_cast<int>(cargs.size());
  benchmark::Initialize(&cargc, cargs.data(), print_help);
  if (benchmark::ReportUnrecognizedArguments(cargc, cargs.data())) return 2;

  add_context(ctx, *measured, env);
  ctx.implementation = std::move(measured->implementation);
  stagekit::perf::register_dist_benchmarks();
  stagekit::perf::register_replication_benchmarks();
  if (ctx.rank == 0) {
    benchmark::ConsoleReporter display;
    benchmark::RunSpecifiedBenchmarks(&display);
  } else {
    SilentReporter silent;
    benchmark::RunSpecifiedBenchmarks(&silent);
  }
  benchmark::Shutdown();
  stagekit::perf::remove_replica_dirs();
  const bool failed = !ctx.broken.empty();
  stagekit::perf::nccl::release_world();  // NCCL's communicators first, while MPI and CUDA are up
  ctx.implementation.reset();
  ctx.mpi.reset();  // before MPI is finalised at exit
  return failed ? 1 : 0;
}
