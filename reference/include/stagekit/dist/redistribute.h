// stagekit/dist/redistribute.h — collectives over a DeviceMesh: the per-dimension sub-communicators
// of a mesh, and the redistribution of a DTensor to all-Replicate (its full tensor).
//
// MeshGroups is collective over `world` (every world rank constructs it, in the same order, for the
// same mesh); ranks outside the mesh get no groups. A 1-D mesh of every world rank in rank order is
// the world itself: no sub-communicator is made for it (MeshGroups then refers to `world`, which must
// outlive it). full_tensor() undoes the placements from the
// last mesh dimension to the first: Shard(d) is an all-gather of the group's blocks along tensor
// dimension d (uneven and empty blocks as torch.chunk gives them), Partial(sum) an all-reduce,
// Replicate nothing. CPU tensors move over the world's backend; CUDA tensors on a host backend make
// a round trip through host memory and come back to their device.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/host_buffer_pool.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {

class MeshGroups {
 public:
  MeshGroups(Communicator& world, const DeviceMesh& mesh);
  [[nodiscard]] const DeviceMesh& mesh() const noexcept { return mesh_; }
  [[nodiscard]] bool member() const noexcept { return !along_.empty(); }
  // The communicator of this rank's group along mesh dimension `dim` (ranks ordered by coordinate).
  [[nodiscard]] Communicator& along(std::int64_t dim) const;

 private:
  DeviceMesh mesh_;
  std::vector<Communicator*> along_;                  // per mesh dimension (empty: not a member)
  std::vector<std::unique_ptr<Communicator>> owned_;  // the sub-communicators made for it
};

// The full (global) tensor of `dt`, contiguous, on the local tensor's device. With `pool`, a full
// tensor gathered straight into host memory (Shard placements whose blocks concatenate contiguously)
// takes its buffer from the pool, reusing pre-faulted memory across calls.
[[nodiscard]] Tensor full_tensor(const DTensor& dt, const MeshGroups& groups, HostBufferPool* pool = nullptr);
// The full tensors of many DTensors (collective: every rank passes the same DTensors in the same
// order). Those on a 1-D host mesh with one Shard placement whose blocks concatenate contiguously are
// gathered together, one coalesced all_gather_into_many per mesh (one agreement on every size, every
// transfer in flight at once, as NCCL's group calls and PyTorch's coalescing managers do); the others
// one by one, as full_tensor(). `groups_for` gives the (collectively made) groups of a mesh.
[[nodiscard]] std::vector<Tensor> full_tensors(std::span<const std::shared_ptr<DTensor>> dts,
                                               const std::function<const MeshGroups&(const DeviceMesh&)>& groups_for,
                                               HostBufferPool* pool = nullptr);
// `dt` redistributed to all-Replicate placements on the same mesh: a new DTensor whose local tensor
// is the full tensor (collective over the mesh, like full_tensor).
[[nodiscard]] std::shared_ptr<DTensor> redistribute_to_replicate(const DTensor& dt, const MeshGroups& groups);
// The full tensor of a ShardedTensor from every rank's local shards (any shard layout, every local
// shard), on the first local shard's device or CPU. The shards' bytes cross `world` in host memory;
// the full tensor passes through `working` (upstream's all-gather device) on its way. A meta `working` device is an
// InvalidArgument, a CUDA one without CUDA Unsupported, raised before the collective.
[[nodiscard]] Tensor full_tensor(const ShardedTensor& st, Communicator& world, Device working = Device::cpu());

// Concatenation of `blocks` along `dim` (equal sizes elsewhere) into a new contiguous tensor.
[[nodiscard]] Tensor concatenate(const std::vector<Tensor>& blocks, std::int64_t dim);

}  // namespace stagekit::dist
