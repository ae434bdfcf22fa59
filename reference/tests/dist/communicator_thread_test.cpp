// Tests of the thread-world Communicator: every operation on worlds of 1 to 4 ranks (the shared checks
// of communicator_checks.h), then what a thread world shows cheaply: timeouts measured on the clock,
// broken communicators, late and throwing ranks, run_thread_world's own contract, and the Unsupported
// answers of the backends this build or machine lacks.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>

#include "communicator_checks.h"
#include "stagekit/config.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::expect_error;

constexpr std::chrono::milliseconds kGenerous = 30s;  // for tests that must not time out
constexpr std::chrono::milliseconds kShort = 300ms;   // for tests that must
constexpr std::chrono::milliseconds kSlack = 3s;      // scheduling delays on a loaded machine

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

class ThreadWorld : public ::testing::TestWithParam<int> {
 protected:
  void run(void (*check)(Communicator&)) { run_thread_world(GetParam(), check, kGenerous); }
};

TEST_P(ThreadWorld, Identity) {
  run_thread_world(
      GetParam(), [](Communicator& c) { testing::check_identity(c, "thread"); }, kGenerous);
}
TEST_P(ThreadWorld, PointToPoint) { run(testing::check_point_to_point); }
TEST_P(ThreadWorld, Broadcast) { run(testing::check_broadcast); }
TEST_P(ThreadWorld, AllGather) { run(testing::check_all_gather); }
TEST_P(ThreadWorld, AllGatherV) { run(testing::check_all_gather_v); }
TEST_P(ThreadWorld, AllGatherInto) { run(testing::check_all_gather_into); }
TEST_P(ThreadWorld, SendRecv) { run(testing::check_send_recv); }
TEST_P(ThreadWorld, BroadcastMany) { run(testing::check_broadcast_many); }
TEST_P(ThreadWorld, BroadcastManyMismatch) { run(testing::check_broadcast_many_mismatch); }
TEST_P(ThreadWorld, AllReduce) { run(testing::check_all_reduce); }
TEST_P(ThreadWorld, Barrier) { run(testing::check_barrier); }
TEST_P(ThreadWorld, Split) { run(testing::check_split); }
TEST_P(ThreadWorld, TensorHelpers) { run(testing::check_tensor_helpers); }
TEST_P(ThreadWorld, MismatchesAreCommunicationErrors) { run(testing::check_mismatches); }

TEST_P(ThreadWorld, BarrierWaitsForEveryRank) {
  const int n = GetParam();
  std::atomic<int> before{0};
  run_thread_world(
      n,
      [&](Communicator& c) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5 * c.rank()));
        ++before;
        c.barrier();
        EXPECT_EQ(before.load(), n) << "rank " << c.rank() << " left the barrier early";
      },
      kGenerous);
}

INSTANTIATE_TEST_SUITE_P(Ranks, ThreadWorld, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& p) { return fmt::format("np{}", p.param); });

class ThreadWorldTimeouts : public ::testing::TestWithParam<int> {};

TEST_P(ThreadWorldTimeouts, MissingRankTimesOutTheCollectiveAndBreaksTheCommunicator) {
  const int n = GetParam();
  const int absent = n - 1;
  std::atomic<int> timeouts{0};
  run_thread_world(
      n,
      [&](Communicator& c) {
        if (c.rank() == absent) return;  // never calls the collective
        const auto start = Clock::now();
        expect_error<TimeoutError>([&] { c.barrier(); },
                                   {"barrier", "timed out after", fmt::format("rank(s) {} did not arrive", absent)},
                                   fmt::format("rank {}", c.rank()));
        const auto waited = since(start);
        EXPECT_GE(waited, kShort);
        EXPECT_LT(waited, kShort + kSlack);
        ++timeouts;
        // Broken: every later operation fails at once.
        const auto after = Clock::now();
        expect_error<CommunicationError>([&] { c.barrier(); }, {"broken", "barrier"}, "barrier after a timeout");
        expect_error<CommunicationError>([&] { c.send(testing::pattern(0, 1), (c.rank() + 1) % n, 0); }, {"broken"},
                                         "send after a timeout");
        EXPECT_LT(since(after), kSlack);
      },
      kShort);
  EXPECT_EQ(timeouts.load(), n - 1);
}

TEST_P(ThreadWorldTimeouts, RecvWithoutSenderTimesOut) {
  run_thread_world(
      GetParam(),
      [&](Communicator& c) {
        if (c.rank() != 0) return;
        const auto start = Clock::now();
        expect_error<TimeoutError>([&] { (void)c.recv_any_size(1, 3); },
                                   {"recv_any_size from rank 1", "tag 3", "timed out after", "rank 1 sent nothing"},
                                   "recv without sender");
        EXPECT_GE(since(start), kShort);
        EXPECT_LT(since(start), kShort + kSlack);
        std::vector<std::byte> one(1);
        expect_error<CommunicationError>([&] { c.recv(one, 1, 4); }, {"broken"}, "recv after a timeout");
      },
      kShort);
}

TEST_P(ThreadWorldTimeouts, LateRankIsToldTheOthersGaveUp) {
  const int n = GetParam();
  run_thread_world(
      n,
      [&](Communicator& c) {
        if (c.rank() == n - 1) {
          std::this_thread::sleep_for(kShort + 500ms);
          expect_error<CommunicationError>([&] { c.barrier(); }, {"cannot complete", "gave up waiting"}, "late rank");
        } else {
          expect_error<TimeoutError>([&] { c.barrier(); }, {"timed out"}, fmt::format("rank {}", c.rank()));
        }
      },
      kShort);
}

TEST_P(ThreadWorldTimeouts, ThrowingRankIsRethrownAndTheOthersTimeOut) {
  const int n = GetParam();
  std::atomic<int> timeouts{0};
  const auto start = Clock::now();
  try {
    run_thread_world(
        n,
        [&](Communicator& c) {
          if (c.rank() == 1) throw std::runtime_error("rank 1 failed on purpose");
          try {
            std::vector<std::byte> data(4);
            c.all_reduce(data, DType::int32, ReduceOp::sum);
          } catch (const TimeoutError& e) {
            EXPECT_NE(std::string(e.what()).find("rank(s) 1"), std::string::npos) << e.what();
            ++timeouts;
          }
        },
        kShort);
    ADD_FAILURE() << "run_thread_world did not rethrow";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "rank 1 failed on purpose");
  }
  EXPECT_EQ(timeouts.load(), n - 1);
  EXPECT_LT(since(start), kShort + kSlack);
}

TEST_P(ThreadWorldTimeouts, FirstExceptionWins) {
  try {
    run_thread_world(
        GetParam(),
        [&](Communicator& c) {
          if (c.rank() == 0) throw InvalidArgument("first");
          std::this_thread::sleep_for(100ms);
          throw std::runtime_error("later");
        },
        kShort);
    ADD_FAILURE() << "run_thread_world did not rethrow";
  } catch (const InvalidArgument& e) {
    EXPECT_STREQ(e.what(), "first");
  }
}

INSTANTIATE_TEST_SUITE_P(Ranks, ThreadWorldTimeouts, ::testing::Values(2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& p) { return fmt::format("np{}", p.param); });

TEST(ThreadWorldApi, RejectsBadArguments) {
  EXPECT_THROW(run_thread_world(0, [](Communicator&) {}), InvalidArgument);
  EXPECT_THROW(run_thread_world(2, std::function<void(Communicator&)>()), InvalidArgument);
}

TEST(ThreadWorldApi, SubCommunicatorsTimeOutOnTheirOwn) {
  run_thread_world(
      3,
      [](Communicator& c) {
        auto sub = c.split(c.rank() == 2 ? kUndefinedColor : 0, 0);
        if (sub) {
          sub->set_timeout(kShort);
          if (sub->rank() == 0) {
            expect_error<TimeoutError>([&] { (void)sub->recv_any_size(1, 0); }, {"timed out"}, "sub recv");
          }
        }
        c.barrier();  // the parent is not broken
      },
      kGenerous);
}

TEST(Backends, NcclWithoutUsableDeviceIsUnsupported) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is usable here";
  const std::string reason = STAGEKIT_HAVE_NCCL ? cuda::availability().reason : "built without NCCL";
  run_thread_world(
      2, [&](Communicator& c) { expect_error<Unsupported>([&] { (void)nccl_communicator(c); }, {reason}, "nccl"); },
      kGenerous);
}

TEST(Backends, MpiMatchesTheBuild) {
  EXPECT_EQ(mpi_compiled(), STAGEKIT_HAVE_MPI != 0);
  if (!mpi_compiled()) {
    expect_error<Unsupported>([] { (void)mpi_world(); }, {"without MPI"}, "mpi_world");
    expect_error<Unsupported>([] { (void)mpi_adopt(nullptr); }, {"without MPI"}, "mpi_adopt");
  }
}

}  // namespace
}  // namespace stagekit::dist
