// stagekit/core/sharded_tensor.h — the legacy ShardedTensor: local shards with their metadata and
// the global metadata of every shard.
//
// Invariants (InvalidArgument otherwise, naming the shard): every shard's offsets and sizes have the
// global tensor's rank and lie inside it; a local shard's tensor has its metadata's sizes and the
// global dtype; local shards are placed on this ShardedTensor's rank.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "stagekit/core/device.h"
#include "stagekit/core/dtype.h"
#include "stagekit/core/tensor.h"

namespace stagekit {

struct ShardMetadata {
  IntList offsets;
  IntList sizes;
  int placement_rank = 0;
  Device placement_device = Device::cpu();

  [[nodiscard]] std::string placement() const;  // "rank:1/cuda:1"
  friend bool operator==(const ShardMetadata&, const ShardMetadata&) = default;
};

struct ShardedTensorMetadata {
  std::vector<ShardMetadata> shards;  // every shard of the global tensor, on every rank
  IntList size;
  DType dtype = DType::float32;
  friend bool operator==(const ShardedTensorMetadata&, const ShardedTensorMetadata&) = default;
};

struct LocalTensorShard {
  Tensor tensor;
  ShardMetadata metadata;
};

class ShardedTensor {
 public:
  ShardedTensor(std::vector<LocalTensorShard> local_shards, ShardedTensorMetadata metadata, int rank);

  [[nodiscard]] const std::vector<LocalTensorShard>& local_shards() const noexcept { return local_shards_; }
  [[nodiscard]] const ShardedTensorMetadata& metadata() const noexcept { return metadata_; }
  [[nodiscard]] const IntList& size() const noexcept { return metadata_.size; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  // The same metadata and rank over other local tensors (one per local shard, same shapes).
  [[nodiscard]] std::shared_ptr<ShardedTensor> with_local_tensors(std::vector<Tensor> tensors) const;
  [[nodiscard]] std::string describe() const;

 private:
  std::vector<LocalTensorShard> local_shards_;
  ShardedTensorMetadata metadata_;
  int rank_;
};

}  // namespace stagekit
