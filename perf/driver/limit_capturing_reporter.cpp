#include "limit_capturing_reporter.h"

#include <algorithm>

#include "bench_context.h"

namespace stagekit::perf {

void LimitCapturingReporter::ReportRuns(const std::vector<Run>& runs) {
  // One benchmark's runs: every repetition, then the aggregates. With
  // --benchmark_report_aggregates_only only the aggregates arrive; the median then stands for the
  // repetitions (the LimitTable takes the median of what it records).
  const bool repetitions_seen =
      std::any_of(runs.begin(), runs.end(), [](const Run& r) { return r.run_type == Run::RT_Iteration; });
  for (const Run& run : runs) {
    const bool usable = repetitions_seen ? run.run_type == Run::RT_Iteration
                                         : run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
    if (!usable || run.error_occurred) continue;
    const std::string name = benchmark_identity(run.run_name.str());
    if (name.rfind("limit/", 0) != 0) continue;
    auto it = run.counters.find("bytes_per_second");
    if (it != run.counters.end() && it->second.value > 0) limit_table().record(name, it->second.value);
  }
  ConsoleReporter::ReportRuns(runs);
}

}  // namespace stagekit::perf
