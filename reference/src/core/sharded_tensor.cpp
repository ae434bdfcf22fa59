// ShardedTensor: validation of shard metadata against the global metadata and the local tensors.
#include "stagekit/core/sharded_tensor.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stagekit/core/error.h"

namespace stagekit {

std::string ShardMetadata::placement() const {
  return fmt::format("rank:{}/{}", placement_rank, placement_device.str());
}

ShardedTensor::ShardedTensor(std::vector<LocalTensorShard> local_shards, ShardedTensorMetadata metadata, int rank)
    : local_shards_(std::move(local_shards)), metadata_(std::move(metadata)), rank_(rank) {
  const std::size_t ndim = metadata_.size.size();
  auto check_shard = [&](const ShardMetadata& m, std::string_view what) {
    check_argument(m.offsets.size() == ndim && m.sizes.size() == ndim,
                   fmt::format("{} has offsets [{}] and sizes [{}] for a {}-D tensor", what, fmt::join(m.offsets, ", "),
                               fmt::join(m.sizes, ", "), ndim));
    for (std::size_t d = 0; d < ndim; ++d) {
      std::int64_t end = 0;  // offsets and sizes may come from a file: the sum must not overflow
      check_argument(
          m.offsets[d] >= 0 && m.sizes[d] >= 0 && !__builtin_add_overflow(m.offsets[d], m.sizes[d], &end) &&
              end <= metadata_.size[d],
          fmt::format("{} (offsets [{}], sizes [{}]) does not fit in the global size [{}]", what,
                      fmt::join(m.offsets, ", "), fmt::join(m.sizes, ", "), fmt::join(metadata_.size, ", ")));
    }
  };
  for (std::size_t i = 0; i < metadata_.shards.size(); ++i)
    check_shard(metadata_.shards[i], fmt::format("shard {}", i));
  for (std::size_t i = 0; i < local_shards_.size(); ++i) {
    const LocalTensorShard& s = local_shards_[i];
    const std::string what = fmt::format("local shard {}", i);
    check_shard(s.metadata, what);
    check_argument(s.tensor.defined(), what + " has no tensor");
    const IntList sizes(s.tensor.sizes().begin(), s.tensor.sizes().end());
    check_argument(sizes == s.metadata.sizes, fmt::format("{}'s tensor has shape [{}] but its metadata says [{}]", what,
                                                          fmt::join(sizes, ", "), fmt::join(s.metadata.sizes, ", ")));
    check_argument(s.tensor.dtype() == metadata_.dtype,
                   fmt::format("{}'s tensor is {} but the sharded tensor is {}", what, dtype_name(s.tensor.dtype()),
                               dtype_name(metadata_.dtype)));
    check_argument(s.metadata.placement_rank == rank_,
                   fmt::format("{} is placed on {} but this sharded tensor belongs to rank {}", what,
                               s.metadata.placement(), rank_));
  }
}

std::shared_ptr<ShardedTensor> ShardedTensor::with_local_tensors(std::vector<Tensor> tensors) const {
  check_argument(tensors.size() == local_shards_.size(),
                 fmt::format("{} tensors for {} local shards", tensors.size(), local_shards_.size()));
  std::vector<LocalTensorShard> shards;
  shards.reserve(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) shards.push_back({std::move(tensors[i]), local_shards_[i].metadata});
  return std::make_shared<ShardedTensor>(std::move(shards), metadata_, rank_);
}

std::string ShardedTensor::describe() const {
  return fmt::format("ShardedTensor(rank {}, {} local shard(s), global size [{}] {})", rank_, local_shards_.size(),
                     fmt::join(metadata_.size, ", "), dtype_name(metadata_.dtype));
}

}  // namespace stagekit
