#include "limit_capturing_reporter.h"

#include "bench_context.h"

namespace stagekit::perf {

void LimitCapturingReporter::ReportRuns(const std::vector<Run>& runs) {
  for (const Run& run : runs) {
    if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
    const std::string name = benchmark_identity(run.run_name.str());
    if (name.rfind("limit/", 0) != 0) continue;
    auto it = run.counters.find("bytes_per_second");
    if (it != run.counters.end() && it->second.value > 0) limit_table().record(name, it->second.value);
  }
  ConsoleReporter::ReportRuns(runs);
}

}  // namespace stagekit::perf
