// A console reporter that also records every finished limit/... benchmark's throughput in the
// LimitTable, so that later stage benchmarks of the same run can report their ratio to it.
#pragma once

#include <benchmark/benchmark.h>

namespace stagekit::perf {

class LimitCapturingReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override;
};

}  // namespace stagekit::perf
