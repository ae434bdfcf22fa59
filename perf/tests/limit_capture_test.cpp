// The limit a stage benchmark is compared with is captured from the limit's own runs, with and
// without --benchmark_report_aggregates_only (where only the aggregates reach the reporter).
#include <gtest/gtest.h>

#include <sstream>

#include "../driver/bench_context.h"
#include "../driver/limit_capturing_reporter.h"

namespace stagekit::perf {
namespace {

using BenchRun = benchmark::BenchmarkReporter::Run;

BenchRun limit_run(const std::string& name, double bytes_per_second, const std::string& aggregate = "") {
  BenchRun r;
  r.run_name.function_name = name;
  r.run_name.time_type = "manual_time";
  r.run_type = aggregate.empty() ? BenchRun::RT_Iteration : BenchRun::RT_Aggregate;
  r.aggregate_name = aggregate;
  r.counters["bytes_per_second"] = benchmark::Counter(bytes_per_second);
  return r;
}

void report(const std::vector<BenchRun>& runs) {
  std::ostringstream sink;
  LimitCapturingReporter reporter;
  reporter.SetOutputStream(&sink);
  reporter.SetErrorStream(&sink);
  reporter.ReportRuns(runs);
}

TEST(LimitCapture, RepetitionsAreRecordedAndTheirMedianIsTheLimit) {
  report({limit_run("limit/test_repetitions", 5e9), limit_run("limit/test_repetitions", 9e9),
          limit_run("limit/test_repetitions", 6e9), limit_run("limit/test_repetitions", 6.6e9, "mean"),
          limit_run("limit/test_repetitions", 6e9, "median")});
  ASSERT_TRUE(limit_table().median("limit/test_repetitions").has_value());
  EXPECT_DOUBLE_EQ(*limit_table().median("limit/test_repetitions"), 6e9);
}

TEST(LimitCapture, AggregatesOnlyRecordTheMedian) {
  report({limit_run("limit/test_aggregates_only", 10e9, "mean"), limit_run("limit/test_aggregates_only", 7e9, "median"),
          limit_run("limit/test_aggregates_only", 1e9, "stddev")});
  ASSERT_TRUE(limit_table().median("limit/test_aggregates_only").has_value());
  EXPECT_DOUBLE_EQ(*limit_table().median("limit/test_aggregates_only"), 7e9);
}

TEST(LimitCapture, StageRunsAndErrorsAreNotLimits) {
  BenchRun failed = limit_run("limit/test_failed", 3e9);
  failed.error_occurred = true;
  report({limit_run("stage/cpu_to_pinned/large/warm", 3e9), failed});
  EXPECT_FALSE(limit_table().median("stage/cpu_to_pinned/large/warm").has_value());
  EXPECT_FALSE(limit_table().median("limit/test_failed").has_value());
}

}  // namespace
}  // namespace stagekit::perf
