// broadcast_state_dict on the thread world (the MPI test runs the same checks across processes):
// storage sharing survives the broadcast, and a rank 0 that cannot pack its dict fails every rank
// at once.
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "broadcast_state_dict_checks.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using namespace std::chrono_literals;

class BroadcastStateDict : public ::testing::TestWithParam<int> {};

TEST_P(BroadcastStateDict, KeepsStorageSharing) {
  run_thread_world(GetParam(), testing::check_broadcast_keeps_sharing, 30s);
}

TEST_P(BroadcastStateDict, PackErrorsReachEveryRank) {
  run_thread_world(GetParam(), testing::check_broadcast_pack_errors, 30s);
}

INSTANTIATE_TEST_SUITE_P(Worlds, BroadcastStateDict, ::testing::Values(1, 2, 3, 4),
                         [](const ::testing::TestParamInfo<int>& p) { return "ws" + std::to_string(p.param); });

}  // namespace
}  // namespace stagekit::dist
