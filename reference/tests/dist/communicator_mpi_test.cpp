// Tests of the MPI Communicator, run by ctest under mpirun with 2 and 4 ranks (dist.mpi_np2,
// dist.mpi_np4). Every rank runs the same GoogleTest cases in the same order (the shared checks of
// communicator_checks.h and broadcast_state_dict_checks.h on the MPI world, then MPI specifics:
// storage sharing across processes is checked there); the timeout scenarios come last and
// leave no MPI operation pending, so every rank reaches MPI_Finalize. main() combines the ranks'
// results: the exit status is non-zero on every rank when any rank failed.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <mpi.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <span>
#include <thread>
#include <type_traits>

#include "broadcast_state_dict_checks.h"
#include "communicator_checks.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using testing::expect_error;

constexpr std::chrono::milliseconds kWorldTimeout = 60s;
constexpr std::chrono::milliseconds kShort = 1500ms;
constexpr std::chrono::milliseconds kSlack = 5s;

Communicator* g_world = nullptr;
Communicator& world() { return *g_world; }

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// MPI_COMM_WORLD as the handle value mpi_adopt() takes (a pointer in Open MPI, an int in MPICH).
template <class Comm = MPI_Comm>
void* world_handle() {
  const Comm comm = MPI_COMM_WORLD;
  if constexpr (std::is_pointer_v<Comm>) {
    return comm;
  } else {
    return reinterpret_cast<void*>(static_cast<std::intptr_t>(comm));
  }
}

TEST(MpiCommunicator, Identity) {
  testing::check_identity(world(), "mpi");
  EXPECT_TRUE(mpi_compiled());
  EXPECT_TRUE(launched_by_mpi());
  int size = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(world().size(), size);
}
TEST(MpiCommunicator, PointToPoint) { testing::check_point_to_point(world()); }
TEST(MpiCommunicator, Broadcast) { testing::check_broadcast(world()); }
TEST(MpiCommunicator, AllGather) { testing::check_all_gather(world()); }
TEST(MpiCommunicator, AllGatherV) { testing::check_all_gather_v(world()); }
TEST(MpiCommunicator, AllGatherInto) { testing::check_all_gather_into(world()); }
TEST(MpiCommunicator, SendRecv) { testing::check_send_recv(world()); }
TEST(MpiCommunicator, BroadcastMany) { testing::check_broadcast_many(world()); }
// The checks that leave their communicator broken run on a duplicate of the world.
TEST(MpiCommunicator, BroadcastManyMismatch) {
  const auto dup = world().split(0, world().rank());
  testing::check_broadcast_many_mismatch(*dup);
}
TEST(MpiCommunicator, SendRecvSizeMismatches) {
  for (auto* check : {testing::check_send_recv_size_mismatch, testing::check_send_recv_short_message}) {
    const auto dup = world().split(0, world().rank());
    check(*dup);
  }
}
TEST(MpiCommunicator, AllReduce) { testing::check_all_reduce(world()); }
TEST(MpiCommunicator, Barrier) { testing::check_barrier(world()); }
TEST(MpiCommunicator, Split) { testing::check_split(world()); }
TEST(MpiCommunicator, TensorHelpers) { testing::check_tensor_helpers(world()); }
TEST(MpiCommunicator, MismatchesAreCommunicationErrors) { testing::check_mismatches(world()); }
TEST(MpiCommunicator, BroadcastStateDictKeepsSharing) { testing::check_broadcast_keeps_sharing(world()); }
TEST(MpiCommunicator, BroadcastStateDictPackErrors) { testing::check_broadcast_pack_errors(world()); }

TEST(MpiCommunicator, AdoptedAndSecondWorldAreIndependent) {
  auto adopted = mpi_adopt(world_handle());
  auto second = mpi_world();  // MPI is initialised already: another duplicate of MPI_COMM_WORLD
  ASSERT_NE(adopted, nullptr);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(adopted->rank(), world().rank());
  EXPECT_EQ(second->size(), world().size());
  // The same tag on three communicators: each message arrives on its own one.
  const int n = world().size();
  const int next = (world().rank() + 1) % n;
  const int prev = (world().rank() + n - 1) % n;
  world().send(testing::pattern(1, 4), next, 0);
  adopted->send(testing::pattern(2, 4), next, 0);
  second->send(testing::pattern(3, 4), next, 0);
  EXPECT_EQ(second->recv_any_size(prev, 0), testing::pattern(3, 4));
  EXPECT_EQ(adopted->recv_any_size(prev, 0), testing::pattern(2, 4));
  EXPECT_EQ(world().recv_any_size(prev, 0), testing::pattern(1, 4));
  adopted->barrier();
  expect_error<InvalidArgument>([] { (void)mpi_adopt(nullptr); }, {"MPI_COMM_NULL"}, "mpi_adopt(nullptr)");
}

// Last: ranks that do not show up. Each scenario runs on its own sub-communicator, so the world stays
// healthy, and is drained afterwards (the late rank completes what the others abandoned).
TEST(MpiCommunicatorTimeouts, ZLast_MissingRanksAreTimeouts) {
  Communicator& w = world();
  const int late = w.size() - 1;

  // A collective that the last rank joins only after the others gave up.
  auto sub = w.split(0, w.rank());
  sub->set_timeout(kShort);
  if (w.rank() == late) {
    std::this_thread::sleep_for(kShort + 2s);
    // The others' signatures were sent before they gave up, so this completes for the late rank.
    EXPECT_NO_THROW(sub->barrier());
  } else {
    const auto start = Clock::now();
    expect_error<TimeoutError>([&] { sub->barrier(); },
                               {"barrier", "timed out after", fmt::format("rank(s) {} did not arrive", late)},
                               fmt::format("rank {}", w.rank()));
    EXPECT_GE(since(start), kShort);
    EXPECT_LT(since(start), kShort + kSlack);
    const auto after = Clock::now();
    expect_error<CommunicationError>([&] { sub->barrier(); }, {"broken"}, "barrier after a timeout");
    EXPECT_LT(since(after), 1s);
  }

  // A receive that nobody matches.
  auto sub2 = w.split(0, w.rank());
  sub2->set_timeout(kShort);
  if (w.rank() == 0) {
    const auto start = Clock::now();
    expect_error<TimeoutError>([&] { (void)sub2->recv_any_size(1, 7); },
                               {"recv_any_size from rank 1", "tag 7", "rank 1 sent nothing"}, "recv without sender");
    EXPECT_GE(since(start), kShort);
    EXPECT_LT(since(start), kShort + kSlack);
  }

  // A large send that the receiver takes only after the sender gave up: the sender's copy stays
  // alive and intact until MPI delivered it.
  auto sub3 = w.split(0, w.rank());
  sub3->set_timeout(kShort);
  const std::size_t big = std::size_t{8} << 20;
  if (w.rank() == 1) {
    expect_error<TimeoutError>([&] { sub3->send(testing::pattern(4, big), 0, 3); },
                               {"send to rank 0", "tag 3", "did not receive it"}, "send without receiver");
  } else if (w.rank() == 0) {
    std::this_thread::sleep_for(kShort + 1s);
    sub3->set_timeout(kWorldTimeout);
    EXPECT_EQ(sub3->recv_any_size(1, 3), testing::pattern(4, big));
  }
  w.barrier();
}

}  // namespace
}  // namespace stagekit::dist

int main(int argc, char** argv) {
  using namespace stagekit::dist;
  ::testing::InitGoogleTest(&argc, argv);
  int failed = 1;
  try {
    auto world = mpi_world();
    world->set_timeout(kWorldTimeout);
    g_world = world.get();
    failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
    // Every rank learns whether any rank failed.
    std::int32_t any = failed;
    world->all_reduce(std::as_writable_bytes(std::span(&any, 1)), stagekit::DType::int32, ReduceOp::sum);
    if (any != 0 && failed == 0) {
      std::fprintf(stderr, "rank %d: %d rank(s) failed\n", world->rank(), static_cast<int>(any));
    }
    failed = any != 0 ? 1 : 0;
    g_world = nullptr;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "communicator_mpi_test: %s\n", e.what());
    failed = 1;
  }
  return failed;
}
