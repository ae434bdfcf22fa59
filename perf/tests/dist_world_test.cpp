// dist_world_test.cpp — measure() and measure_interleaved() of the dist benchmark driver on a thread
// world: the turns of interleaved cases rotate every iteration, every case gets one time per
// iteration (the slowest rank's), a setup problem is every case's error, a wrong result only its own.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../driver/dist_world.h"
#include "stagekit/core/error.h"

namespace stagekit::perf {
namespace {

// What rank 0 saw, in order: the ids of the cases it ran.
struct Log {
  std::mutex mutex;
  std::vector<int> runs;
};

class LoggingCase : public RankCase {
 public:
  LoggingCase(Log& log, int id, int rank, std::chrono::milliseconds rank1_sleep, std::string wrong)
      : log_(log), id_(id), rank_(rank), rank1_sleep_(rank1_sleep), wrong_(std::move(wrong)) {}
  void run(dist::Communicator&) override {
    if (rank_ == 0) {
      const std::lock_guard lock(log_.mutex);
      log_.runs.push_back(id_);
    }
    if (rank_ == 1) std::this_thread::sleep_for(rank1_sleep_);
  }
  std::string verify() override { return rank_ == 1 ? wrong_ : std::string(); }

 private:
  Log& log_;
  int id_;
  int rank_;
  std::chrono::milliseconds rank1_sleep_;
  std::string wrong_;
};

CaseFactory logging(Log& log, int id, std::chrono::milliseconds rank1_sleep = {}, const std::string& wrong = {}) {
  return [&log, id, rank1_sleep, wrong](dist::Communicator& comm) -> std::unique_ptr<RankCase> {
    return std::make_unique<LoggingCase>(log, id, comm.rank(), rank1_sleep, wrong);
  };
}

class DistWorld : public ::testing::Test {
 protected:
  void SetUp() override {
    dist_context().backend = "thread";
    dist_context().world_size = 2;
  }
};

TEST_F(DistWorld, InterleavedCasesTakeTurnsRotatingEveryIteration) {
  Log log;
  const auto all = measure_interleaved({logging(log, 0), logging(log, 1), logging(log, 2)}, 4);
  ASSERT_EQ(all.size(), 3u);
  // One untimed warm-up run of each case, then iteration i starts with case i % 3.
  EXPECT_EQ(log.runs, (std::vector<int>{0, 1, 2, 0, 1, 2, 1, 2, 0, 2, 0, 1, 0, 1, 2}));
  for (const Measurement& m : all) {
    EXPECT_EQ(m.error, "");
    EXPECT_EQ(m.seconds.size(), 4u);
  }
}

TEST_F(DistWorld, EachCaseGetsTheSlowestRanksTimeOfItsOwnRuns) {
  Log log;
  const auto all = measure_interleaved({logging(log, 0), logging(log, 1, std::chrono::milliseconds(30))}, 3);
  ASSERT_EQ(all.size(), 2u);
  for (const double s : all[1].seconds) EXPECT_GE(s, 0.029);  // rank 1 sleeps in case 1 only
  for (const double s : all[0].seconds) EXPECT_LT(s, 0.029);
}

TEST_F(DistWorld, ASetupProblemIsEveryCasesErrorAWrongResultOnlyItsOwn) {
  Log log;
  const CaseFactory unsupported = [](dist::Communicator& comm) -> std::unique_ptr<RankCase> {
    if (comm.rank() == 1) throw Unsupported("no such thing here");
    return nullptr;
  };
  const auto refused = measure_interleaved({logging(log, 0), unsupported}, 2);
  ASSERT_EQ(refused.size(), 2u);
  for (const Measurement& m : refused) {
    EXPECT_NE(m.error.find("not_supported: "), std::string::npos) << m.error;
    EXPECT_NE(m.error.find("no such thing here"), std::string::npos) << m.error;
  }
  EXPECT_TRUE(log.runs.empty());

  const auto wrong = measure_interleaved({logging(log, 0), logging(log, 1, {}, "byte 7 differs")}, 2);
  EXPECT_EQ(wrong[0].error, "");
  EXPECT_EQ(wrong[1].error, "wrong result: rank 1: byte 7 differs");
  EXPECT_EQ(wrong[0].seconds.size(), 2u);
}

TEST_F(DistWorld, MeasureIsOneCaseInterleavedWithNothing) {
  Log log;
  const Measurement m = measure(logging(log, 5), 3);
  EXPECT_EQ(m.error, "");
  EXPECT_EQ(m.seconds.size(), 3u);
  EXPECT_EQ(log.runs, (std::vector<int>{5, 5, 5, 5}));  // a warm-up, then the 3 timed runs
}

}  // namespace
}  // namespace stagekit::perf
