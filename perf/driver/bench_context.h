// What every benchmark of a stagekit-bench run shares: the run mode (which sizes), the copy thread
// count the limits are measured with, the implementation under test, and the table of limits
// measured earlier in the same run.
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/conformance/implementation.h"

namespace stagekit::perf {

enum class Mode { smoke, quick, full };

// Byte sizes of benchmark rows.
inline constexpr std::size_t kKiB = 1024;
inline constexpr std::size_t kMiB = kKiB * kKiB;

[[nodiscard]] const char* mode_name(Mode m) noexcept;
// The mode a --stagekit_mode value names ("smoke", "quick", "full"), nullopt for anything else.
[[nodiscard]] std::optional<Mode> mode_from_name(std::string_view name) noexcept;

struct BenchContext {
  Mode mode = Mode::full;
  std::size_t copy_threads = 1;  // threads of the matching host-copy limits
  std::unique_ptr<conformance::Implementation> implementation;
};

// The context of the current run (set once by main before benchmarks run).
[[nodiscard]] BenchContext& bench_context();

// Limits measured in this run: benchmark name (without a /real_time or /manual_time suffix) ->
// bytes per second of each repetition. Filled by the reporter as limit benchmarks finish.
class LimitTable {
 public:
  void record(const std::string& name, double bytes_per_second);
  // The median over repetitions, or nothing if the limit has not run (yet) in this process.
  [[nodiscard]] std::optional<double> median(const std::string& name) const;

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::vector<double>> samples_;
};

[[nodiscard]] LimitTable& limit_table();

// Strips Google Benchmark's "/real_time" or "/manual_time" suffix.
[[nodiscard]] std::string benchmark_identity(const std::string& run_name);

}  // namespace stagekit::perf
