// stagekit/core/dtensor.h — the distributed tensor model: DeviceMesh, placements, DTensorSpec and
// DTensor (a local tensor plus the spec that places it in a global tensor).
//
// This is data only (no communication): collectives over a mesh live in stagekit/dist.
// Sharding follows torch.chunk / DTensor exactly: a dimension of size S sharded over n mesh
// coordinates gives coordinate c the rows [c*ceil(S/n), min(S, (c+1)*ceil(S/n))); trailing
// coordinates may hold fewer rows or none (an empty shard whose offset is S). Several mesh
// dimensions sharding the same tensor dimension apply in mesh-dimension order, each within the
// previous local range.
//
// Invariants (InvalidArgument otherwise, naming the field):
//   * a mesh has ndim >= 1, positive sizes, and prod(shape) distinct non-negative ranks;
//   * a spec has one placement per mesh dimension; Shard(d) has 0 <= d < rank of the global shape;
//     global strides have one entry per global dimension;
//   * a DTensor's local tensor has exactly the local shape its spec gives its rank, and its rank
//     belongs to the mesh.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stagekit/core/device.h"
#include "stagekit/core/tensor.h"

namespace stagekit {

class DeviceMesh {
 public:
  // `ranks` lists the global rank at every mesh coordinate, row-major over `shape`.
  DeviceMesh(DeviceType device_type, IntList shape, std::vector<int> ranks);
  // A 1-D mesh over ranks 0..world_size-1.
  [[nodiscard]] static DeviceMesh one_d(DeviceType device_type, int world_size);

  [[nodiscard]] DeviceType device_type() const noexcept { return device_type_; }
  [[nodiscard]] const IntList& shape() const noexcept { return shape_; }
  [[nodiscard]] std::int64_t ndim() const noexcept { return static_cast<std::int64_t>(shape_.size()); }
  [[nodiscard]] std::int64_t size(std::int64_t dim) const;
  [[nodiscard]] const std::vector<int>& ranks() const noexcept { return ranks_; }
  // This rank's coordinate, or nullopt when it is not in the mesh.
  [[nodiscard]] std::optional<IntList> coordinate_of(int rank) const;
  // The ranks that differ from `rank` only in mesh dimension `dim`, ordered by that coordinate.
  [[nodiscard]] std::vector<int> group_along(int rank, std::int64_t dim) const;
  [[nodiscard]] std::string str() const;  // "DeviceMesh(cuda, [2, 2], ranks [0, 1, 2, 3])"

  friend bool operator==(const DeviceMesh&, const DeviceMesh&) = default;

 private:
  DeviceType device_type_;
  IntList shape_;
  std::vector<int> ranks_;
};

struct Placement {
  enum class Kind : std::uint8_t { shard, replicate, partial };
  Kind kind = Kind::replicate;
  std::int64_t dim = 0;  // the sharded tensor dimension, for shard

  [[nodiscard]] static Placement shard(std::int64_t dim) { return {Kind::shard, dim}; }
  [[nodiscard]] static Placement replicate() { return {Kind::replicate, 0}; }
  [[nodiscard]] static Placement partial() { return {Kind::partial, 0}; }  // pending sum
  [[nodiscard]] bool is_shard() const noexcept { return kind == Kind::shard; }
  [[nodiscard]] std::string str() const;  // "Shard(0)", "Replicate()", "Partial(sum)"

  friend bool operator==(const Placement& a, const Placement& b) noexcept {
    return a.kind == b.kind && (a.kind != Kind::shard || a.dim == b.dim);
  }
};

struct DTensorSpec {
  DeviceMesh mesh;
  std::vector<Placement> placements;
  IntList global_shape;
  IntList global_strides;

  // Validates the invariants above.
  void validate() const;
  [[nodiscard]] std::string str() const;
  friend bool operator==(const DTensorSpec&, const DTensorSpec&) = default;
};

struct LocalShard {
  IntList shape;
  IntList offset;  // of the local block inside the global tensor
};
// The block of the global tensor that `rank` holds under `spec` (torch.chunk rules, see above).
// Replicate and Partial keep the full extent. InvalidArgument when `rank` is not in the mesh.
[[nodiscard]] LocalShard local_shard_of(const DTensorSpec& spec, int rank);
// torch.chunk of a dimension of `size` into `n` parts: (length, offset) of part `index`.
[[nodiscard]] std::pair<std::int64_t, std::int64_t> chunk_of(std::int64_t size, std::int64_t n, std::int64_t index);

class DTensor {
 public:
  DTensor(Tensor local, DTensorSpec spec, int rank);
  // A DTensor from a full tensor: this rank's block of `full` is copied into a new contiguous local
  // tensor on `full`'s device (Replicate and Partial placements keep the whole extent).
  [[nodiscard]] static std::shared_ptr<DTensor> distribute(const Tensor& full, DeviceMesh mesh,
                                                           std::vector<Placement> placements, int rank);

  [[nodiscard]] const Tensor& local() const noexcept { return local_; }
  [[nodiscard]] const DTensorSpec& spec() const noexcept { return spec_; }
  [[nodiscard]] int rank() const noexcept { return rank_; }
  [[nodiscard]] const IntList& global_shape() const noexcept { return spec_.global_shape; }
  [[nodiscard]] LocalShard local_shard() const { return local_shard_of(spec_, rank_); }
  // The same spec and rank over another local tensor (same shape).
  [[nodiscard]] std::shared_ptr<DTensor> with_local(Tensor local) const;
  [[nodiscard]] std::string describe() const;

 private:
  Tensor local_;
  DTensorSpec spec_;
  int rank_;
};

}  // namespace stagekit
