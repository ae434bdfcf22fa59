#include "bench_context.h"

#include <algorithm>

namespace stagekit::perf {

const char* mode_name(Mode m) noexcept {
  switch (m) {
    case Mode::smoke: return "smoke";
    case Mode::quick: return "quick";
    case Mode::full: return "full";
  }
  return "?";
}

std::optional<Mode> mode_from_name(std::string_view name) noexcept {
  for (Mode m : {Mode::smoke, Mode::quick, Mode::full}) {
    if (name == mode_name(m)) return m;
  }
  return std::nullopt;
}

BenchContext& bench_context() {
  static BenchContext context;
  return context;
}

void LimitTable::record(const std::string& name, double bytes_per_second) {
  std::lock_guard lock(mutex_);
  samples_[name].push_back(bytes_per_second);
}

std::optional<double> LimitTable::median(const std::string& name) const {
  std::lock_guard lock(mutex_);
  auto it = samples_.find(name);
  if (it == samples_.end() || it->second.empty()) return std::nullopt;
  std::vector<double> v = it->second;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

LimitTable& limit_table() {
  static LimitTable table;
  return table;
}

std::string benchmark_identity(const std::string& run_name) {
  for (const std::string suffix : {"/real_time", "/manual_time"}) {
    if (run_name.size() > suffix.size() &&
        run_name.compare(run_name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      return run_name.substr(0, run_name.size() - suffix.size());
    }
  }
  return run_name;
}

}  // namespace stagekit::perf
