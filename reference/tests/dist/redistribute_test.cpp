// Redistribution on a thread world: every placement mix of a 2-D mesh, uneven and empty shards and
// Partial(sum) give the global tensor, as a full tensor and as an all-Replicate DTensor; MeshGroups
// pair exactly the ranks that share the other coordinates.
#include <gtest/gtest.h>

#include <cstring>

#include "stagekit/core/error.h"
#include "stagekit/dist/redistribute.h"

namespace stagekit::dist {
namespace {

Tensor global(const IntList& shape) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  return Tensor::arange(n, DType::float64).view(shape);
}

TEST(Redistribute, EveryLayoutOfA2x2MeshGivesTheGlobalTensor) {
  const DeviceMesh mesh(DeviceType::cpu, {2, 2}, {0, 1, 2, 3});
  const std::vector<std::vector<Placement>> layouts = {
      {Placement::shard(0), Placement::shard(0)},    {Placement::shard(0), Placement::shard(1)},
      {Placement::shard(1), Placement::shard(0)},    {Placement::replicate(), Placement::shard(1)},
      {Placement::shard(0), Placement::replicate()}, {Placement::replicate(), Placement::replicate()}};
  for (const IntList& shape : {IntList{7, 5}, IntList{1, 3}, IntList{4, 4}}) {
    for (const auto& placements : layouts) {
      run_thread_world(4, [&](Communicator& comm) {
        const MeshGroups groups(comm, mesh);
        const auto dt = DTensor::distribute(global(shape), mesh, placements, comm.rank());
        EXPECT_TRUE(Tensor::equal(full_tensor(*dt, groups), global(shape)))
            << "rank " << comm.rank() << " " << dt->describe();
        const auto replicated = redistribute_to_replicate(*dt, groups);
        EXPECT_EQ(replicated->spec().placements,
                  (std::vector<Placement>{Placement::replicate(), Placement::replicate()}));
        EXPECT_TRUE(Tensor::equal(replicated->local(), global(shape)));
      });
    }
  }
}

TEST(Redistribute, GroupsAlongEachMeshDimension) {
  const DeviceMesh mesh(DeviceType::cpu, {2, 3}, {0, 1, 2, 3, 4, 5});
  run_thread_world(6, [&](Communicator& comm) {
    const MeshGroups groups(comm, mesh);
    // Along dimension 1: ranks {0,1,2} and {3,4,5}; along 0: {0,3}, {1,4}, {2,5}.
    EXPECT_EQ(groups.along(1).size(), 3);
    EXPECT_EQ(groups.along(1).rank(), comm.rank() % 3);
    EXPECT_EQ(groups.along(0).size(), 2);
    EXPECT_EQ(groups.along(0).rank(), comm.rank() / 3);
    std::int64_t mine = comm.rank();
    std::vector<std::byte> all(sizeof mine * 2);
    groups.along(0).all_gather(std::as_bytes(std::span(&mine, 1)), all);
    std::int64_t first = 0, second = 0;
    std::memcpy(&first, all.data(), sizeof first);
    std::memcpy(&second, all.data() + sizeof first, sizeof second);
    EXPECT_EQ(first, comm.rank() % 3);
    EXPECT_EQ(second, comm.rank() % 3 + 3);
  });
}

TEST(Redistribute, RanksOutsideTheMeshGetNoGroups) {
  const DeviceMesh mesh(DeviceType::cpu, {2}, {0, 2});
  run_thread_world(3, [&](Communicator& comm) {
    const MeshGroups groups(comm, mesh);
    EXPECT_EQ(groups.member(), comm.rank() != 1);
    if (comm.rank() == 1) {
      EXPECT_THROW((void)groups.along(0), InvalidArgument);
    }
  });
}

}  // namespace
}  // namespace stagekit::dist
