// The distributed tensor model: meshes, torch.chunk sharding (uneven, empty shards, nested mesh
// dimensions), spec validation, DTensor/ShardedTensor invariants, and staging of both by the
// reference stager (local data copied, spec and metadata kept, sharing preserved).
#include <gtest/gtest.h>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/value.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit {
namespace {

DTensorSpec spec_of(DeviceMesh mesh, std::vector<Placement> placements, IntList shape) {
  IntList strides = Tensor::contiguous_strides(shape);
  return DTensorSpec{std::move(mesh), std::move(placements), std::move(shape), std::move(strides)};
}

TEST(DeviceMesh, CoordinatesAndGroups) {
  const DeviceMesh mesh(DeviceType::cpu, {2, 3}, {0, 1, 2, 3, 4, 5});
  EXPECT_EQ(mesh.coordinate_of(4), (IntList{1, 1}));
  EXPECT_FALSE(mesh.coordinate_of(6).has_value());
  EXPECT_EQ(mesh.group_along(4, 0), (std::vector<int>{1, 4}));
  EXPECT_EQ(mesh.group_along(4, 1), (std::vector<int>{3, 4, 5}));
  EXPECT_THROW(DeviceMesh(DeviceType::cpu, {2, 2}, {0, 1, 2}), InvalidArgument);
  EXPECT_THROW(DeviceMesh(DeviceType::cpu, {2}, {1, 1}), InvalidArgument);
  EXPECT_THROW(DeviceMesh(DeviceType::cpu, {0}, {}), InvalidArgument);
}

TEST(Sharding, ChunkFollowsTorchChunk) {
  // torch.chunk(arange(10), 4) -> sizes 3, 3, 3, 1
  EXPECT_EQ(chunk_of(10, 4, 0), (std::pair<std::int64_t, std::int64_t>{3, 0}));
  EXPECT_EQ(chunk_of(10, 4, 3), (std::pair<std::int64_t, std::int64_t>{1, 9}));
  // torch.chunk(arange(5), 4) -> sizes 2, 2, 1 and an empty fourth shard at offset 5
  EXPECT_EQ(chunk_of(5, 4, 2), (std::pair<std::int64_t, std::int64_t>{1, 4}));
  EXPECT_EQ(chunk_of(5, 4, 3), (std::pair<std::int64_t, std::int64_t>{0, 5}));
  // one row over 4 ranks: rank 0 holds it, the others are empty
  EXPECT_EQ(chunk_of(1, 4, 0), (std::pair<std::int64_t, std::int64_t>{1, 0}));
  EXPECT_EQ(chunk_of(1, 4, 1), (std::pair<std::int64_t, std::int64_t>{0, 1}));
  EXPECT_EQ(chunk_of(0, 2, 1), (std::pair<std::int64_t, std::int64_t>{0, 0}));
}

TEST(Sharding, ChunkOfTheLargestSizesDoesNotOverflow) {
  constexpr std::int64_t kMax = INT64_MAX;  // 2^63 - 1: chunks of 2^62 (rounded up), the last one short
  EXPECT_EQ(chunk_of(kMax, 2, 0), (std::pair<std::int64_t, std::int64_t>{std::int64_t{1} << 62, 0}));
  EXPECT_EQ(chunk_of(kMax, 2, 1),
            (std::pair<std::int64_t, std::int64_t>{(std::int64_t{1} << 62) - 1, std::int64_t{1} << 62}));
  EXPECT_EQ(chunk_of(kMax, kMax, kMax - 1), (std::pair<std::int64_t, std::int64_t>{1, kMax - 1}));
  EXPECT_EQ(chunk_of(kMax - 1, 3, 2),
            (std::pair<std::int64_t, std::int64_t>{3074457345618258602, 6148914691236517204}));
  // Chunks of 2: the start 2 * (kMax - 2) overflows; it lies past the end, so the chunk is empty at
  // the end, as for small sizes (chunk_of(5, 4, 3) above).
  EXPECT_EQ(chunk_of(kMax, kMax - 1, kMax - 2), (std::pair<std::int64_t, std::int64_t>{0, kMax}));
  EXPECT_THROW((void)chunk_of(-1, 2, 0), InvalidArgument);
}

TEST(DeviceMesh, ARankCountPastSixtyFourBitsIsRefused) {
  EXPECT_THROW(DeviceMesh(DeviceType::cpu, {std::int64_t{1} << 32, std::int64_t{1} << 32}, {0}), InvalidArgument);
}

TEST(Sharding, LocalShardsOfTwoDimensionalMeshes) {
  const DeviceMesh mesh(DeviceType::cpu, {2, 2}, {0, 1, 2, 3});
  // Shard(0) on both mesh dimensions: rows split in 2, then each half in 2 again.
  const auto nested = spec_of(mesh, {Placement::shard(0), Placement::shard(0)}, {10, 4});
  EXPECT_EQ(local_shard_of(nested, 0).shape, (IntList{3, 4}));
  EXPECT_EQ(local_shard_of(nested, 1).offset, (IntList{3, 0}));
  EXPECT_EQ(local_shard_of(nested, 1).shape, (IntList{2, 4}));
  EXPECT_EQ(local_shard_of(nested, 3).offset, (IntList{8, 0}));
  // Shard(0) x Shard(1), and Replicate x Shard(1)
  const auto grid = spec_of(mesh, {Placement::shard(0), Placement::shard(1)}, {4, 6});
  EXPECT_EQ(local_shard_of(grid, 2).offset, (IntList{2, 0}));
  EXPECT_EQ(local_shard_of(grid, 3).offset, (IntList{2, 3}));
  const auto mixed = spec_of(mesh, {Placement::replicate(), Placement::shard(1)}, {4, 5});
  EXPECT_EQ(local_shard_of(mixed, 2).shape, (IntList{4, 3}));
  EXPECT_EQ(local_shard_of(mixed, 3).shape, (IntList{4, 2}));
  EXPECT_EQ(local_shard_of(mixed, 3).offset, (IntList{0, 3}));
  const auto partial = spec_of(mesh, {Placement::partial(), Placement::replicate()}, {4, 5});
  EXPECT_EQ(local_shard_of(partial, 3).shape, (IntList{4, 5}));
  EXPECT_THROW((void)local_shard_of(spec_of(mesh, {Placement::shard(2), Placement::replicate()}, {4, 5}), 0),
               InvalidArgument);
  EXPECT_THROW((void)local_shard_of(spec_of(mesh, {Placement::shard(0)}, {4, 5}), 0), InvalidArgument);
  EXPECT_THROW((void)local_shard_of(grid, 7), InvalidArgument);
}

TEST(DTensor, DistributeSlicesTheFullTensorAndChecksLocalShapes) {
  const Tensor full = Tensor::arange(12, DType::float32).view({6, 2});
  const auto mesh = DeviceMesh::one_d(DeviceType::cpu, 4);
  const auto d3 = DTensor::distribute(full, mesh, {Placement::shard(0)}, 3);
  EXPECT_EQ(IntList(d3->local().sizes().begin(), d3->local().sizes().end()), (IntList{0, 2}));
  const auto d1 = DTensor::distribute(full, mesh, {Placement::shard(0)}, 1);
  EXPECT_EQ(d1->local().item({0, 0}), 4.0);
  EXPECT_EQ(d1->local().item({1, 1}), 7.0);
  EXPECT_EQ(d1->global_shape(), (IntList{6, 2}));
  EXPECT_THROW(DTensor(Tensor::zeros({3, 2}, DType::float32), d1->spec(), 1), InvalidArgument);
  EXPECT_THROW(DTensor(Tensor::zeros({2, 2}, DType::float32), d1->spec(), 9), InvalidArgument);
}

TEST(ShardedTensor, MetadataIsValidated) {
  ShardedTensorMetadata meta{
      {{{0, 0}, {5, 10}, 0, Device::cpu()}, {{5, 0}, {5, 10}, 1, Device::cpu()}}, {10, 10}, DType::float32};
  const Tensor local = Tensor::zeros({5, 10}, DType::float32);
  EXPECT_NO_THROW(ShardedTensor({{local, meta.shards[1]}}, meta, 1));
  EXPECT_THROW(ShardedTensor({{local, meta.shards[1]}}, meta, 0), InvalidArgument);  // placed elsewhere
  EXPECT_THROW(ShardedTensor({{Tensor::zeros({4, 10}, DType::float32), meta.shards[1]}}, meta, 1), InvalidArgument);
  EXPECT_THROW(ShardedTensor({{Tensor::zeros({5, 10}, DType::int64), meta.shards[1]}}, meta, 1), InvalidArgument);
  ShardedTensorMetadata outside = meta;
  outside.shards[1].offsets = {6, 0};
  EXPECT_THROW(ShardedTensor({}, outside, 1), InvalidArgument);
  // offset + size overflows int64 (metadata read from a file): refused, not wrapped into range.
  ShardedTensorMetadata wrapping = meta;
  wrapping.size = {INT64_MAX, 10};
  wrapping.shards[1].offsets = {INT64_MAX, 0};
  wrapping.shards[1].sizes = {INT64_MAX, 10};
  EXPECT_THROW(ShardedTensor({}, wrapping, 1), InvalidArgument);
  EXPECT_EQ(meta.shards[1].placement(), "rank:1/cpu");
}

TEST(StagerDistributed, DTensorLocalIsCopiedAndSpecKept) {
  const auto mesh = DeviceMesh::one_d(DeviceType::cpu, 2);
  const Tensor local = Tensor::random({3, 3}, DType::float32, 7);
  const auto dt = std::make_shared<DTensor>(
      local, DTensorSpec{mesh, {Placement::shard(0)}, {6, 3}, Tensor::contiguous_strides(IntList{6, 3})}, 1);
  auto sd = std::make_shared<Dict>();
  sd->set("dtensor", Value(dt));
  sd->set("alias", Value(local.view({9})));  // shares the local tensor's storage
  StateDictStager stager(StagerOptions{true, true});
  const Value staged = stager.stage(Value(sd));
  const auto& sdt = *staged["dtensor"].as_dtensor_node();
  EXPECT_EQ(sdt.spec(), dt->spec());
  EXPECT_EQ(sdt.rank(), 1);
  EXPECT_TRUE(Tensor::equal(sdt.local(), local));
  EXPECT_FALSE(sdt.local().storage().is_alias_of(local.storage()));
  EXPECT_TRUE(sdt.local().storage().is_alias_of(staged["alias"].as_tensor().storage())) << "sharing lost";
  EXPECT_EQ(sdt.local().storage().memory_kind(), MemoryKind::pinned_shared);
}

TEST(StagerDistributed, ShardedTensorShardsAreCopiedAndMetadataKept) {
  ShardedTensorMetadata meta{
      {{{0, 0}, {5, 10}, 0, Device::cpu()}, {{5, 0}, {5, 10}, 1, Device::cpu()}}, {10, 10}, DType::float32};
  const Tensor local = Tensor::arange(50, DType::float32).view({5, 10});
  const auto st = std::make_shared<ShardedTensor>(std::vector<LocalTensorShard>{{local, meta.shards[0]}}, meta, 0);
  auto sd = std::make_shared<Dict>();
  sd->set("sharded", Value(st));
  StateDictStager stager;
  const Value staged = stager.stage(Value(sd));
  const auto& sst = *staged["sharded"].as_sharded_tensor_node();
  EXPECT_EQ(sst.metadata(), meta);
  ASSERT_EQ(sst.local_shards().size(), 1U);
  EXPECT_TRUE(Tensor::equal(sst.local_shards()[0].tensor, local));
  EXPECT_FALSE(sst.local_shards()[0].tensor.storage().is_alias_of(local.storage()));
}

}  // namespace
}  // namespace stagekit
