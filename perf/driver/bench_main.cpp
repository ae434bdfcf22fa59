// stagekit-bench: the perf harness. Google Benchmark's own flags all work (--benchmark_out=FILE
// --benchmark_out_format=json --benchmark_repetitions=N --benchmark_filter=REGEX ...), plus:
//   --stagekit_mode=smoke|quick|full   sizes and run time (default full; see perf/METRICS.md)
//   --impl SPEC                        the implementation under test, loaded like stagekit-conform's
//                                      (reference, or a plugin .so; default $STAGEKIT_IMPL, else
//                                      reference; --stagekit_impl=SPEC is the same)
// Limit benchmarks always run first (a filter is widened to include them) so that every stage
// benchmark can report its ratio to a limit measured in the same run.
#include <algorithm>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include <benchmark/benchmark.h>

#include "bench_context.h"
#include "bench_registry.h"
#include "implementation_option.h"
#include "limit_capturing_reporter.h"
#include "stagekit/loader/environment.h"

namespace {

using stagekit::perf::Mode;

void print_help() {
  std::cout
      << "stagekit-bench: state-dict staging benchmarks next to the hardware limits measured in the same run.\n"
         "\n"
         "  --stagekit_mode=smoke|quick|full  smoke: tiny sizes, one iteration (tests); quick: full sizes, short\n"
         "                                    runs (main job); full: full sizes (default; nightly adds repetitions)\n"
      << stagekit::perf::impl_flag_help()
      << "\n"
         "Names: limit/<what>/... and stage/<src>_to_<dst>/<layout>/<cold|warm> (perf/METRICS.md).\n"
         "Google Benchmark flags:\n";
  benchmark::PrintDefaultHelp();
}

// Removes --stagekit_mode from argv; returns false on a bad value.
bool take_own_flags(int& argc, char** argv, Mode& mode) {
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--stagekit_mode=", 0) == 0) {
      const std::string v = arg.substr(16);
      if (const std::optional<Mode> named = stagekit::perf::mode_from_name(v)) {
        mode = *named;
      } else {
        std::cerr << "stagekit-bench: --stagekit_mode must be smoke, quick or full (got '" << v << "')\n";
        return false;
      }
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return true;
}

// The arguments Google Benchmark sees: the mode's minimum time first (a --benchmark_min_time given
// on the command line comes later and wins), and a --benchmark_filter=X widened to (X)|^limit/ so
// that the limits always run. Per-benchmark settings would change the benchmark names.
std::vector<std::string> benchmark_args(int argc, char** argv, Mode mode) {
  std::vector<std::string> args(argv, argv + argc);
  if (mode == Mode::smoke) args.insert(args.begin() + 1, "--benchmark_min_time=0.000001");
  if (mode == Mode::quick) args.insert(args.begin() + 1, "--benchmark_min_time=0.2");
  for (std::string& a : args) {
    if (a.rfind("--benchmark_filter=", 0) == 0) a = "--benchmark_filter=(" + a.substr(19) + ")|^limit/";
  }
  return args;
}

void add_context(const Mode mode, const stagekit::perf::MeasuredImplementation& measured) {
  const auto env = stagekit::conformance::describe_environment();
  const auto& ctx = stagekit::perf::bench_context();
  stagekit::perf::add_common_context(measured, env);
  const bool has_cuda = env["cuda"].is_object();
  benchmark::AddCustomContext("cuda", has_cuda ? env["cuda"].value("description", "available") : "none");
  benchmark::AddCustomContext("cuda_reason", has_cuda ? "" : env.value("cuda_reason", ""));
  benchmark::AddCustomContext("gpu", has_cuda ? env["cuda"].value("description", "") : "none");
  benchmark::AddCustomContext("copy_threads", std::to_string(ctx.copy_threads));
  benchmark::AddCustomContext("mode", stagekit::perf::mode_name(mode));
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      print_help();
      return 0;
    }
  }
  Mode mode = Mode::full;
  std::string impl;
  if (!stagekit::perf::take_impl_flag("stagekit-bench", argc, argv, impl)) return 2;
  if (!take_own_flags(argc, argv, mode)) return 2;
  std::vector<std::string> args = benchmark_args(argc, argv, mode);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  int cargc = static_cast<int>(cargs.size());
  benchmark::Initialize(&cargc, cargs.data(), print_help);
  if (benchmark::ReportUnrecognizedArguments(cargc, cargs.data())) return 2;

  auto measured = stagekit::perf::load_measured_implementation("stagekit-bench", impl);
  if (!measured) return 2;
  auto& ctx = stagekit::perf::bench_context();
  ctx.mode = mode;
  ctx.copy_threads = std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 8);
  add_context(mode, *measured);
  ctx.implementation = std::move(measured->implementation);
  stagekit::perf::register_limit_benchmarks();
  stagekit::perf::register_stage_benchmarks();

  stagekit::perf::LimitCapturingReporter display;
  benchmark::RunSpecifiedBenchmarks(&display);
  benchmark::Shutdown();
  return 0;
}
