// DeviceMesh, placements, specs and DTensor: validation and the torch.chunk sharding arithmetic.
#include "stagekit/core/dtensor.h"

#include <algorithm>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stagekit/core/error.h"

namespace stagekit {
namespace {

std::string_view device_type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

}  // namespace

// ---- DeviceMesh ------------------------------------------------------------------------------------

DeviceMesh::DeviceMesh(DeviceType device_type, IntList shape, std::vector<int> ranks)
    : device_type_(device_type), shape_(std::move(shape)), ranks_(std::move(ranks)) {
  check_argument(!shape_.empty(), "a device mesh needs at least one dimension");
  std::int64_t total = 1;
  for (std::int64_t s : shape_) {
    check_argument(s > 0, fmt::format("device mesh sizes must be positive, got {}", fmt::join(shape_, ", ")));
    check_argument(
        !__builtin_mul_overflow(total, s, &total),
        fmt::format("a device mesh of shape [{}] has more ranks than 64 bits count", fmt::join(shape_, ", ")));
  }
  check_argument(
      static_cast<std::int64_t>(ranks_.size()) == total,
      fmt::format("a device mesh of shape [{}] needs {} ranks, got {}", fmt::join(shape_, ", "), total, ranks_.size()));
  std::set<int> seen;
  for (int r : ranks_) {
    check_argument(r >= 0, fmt::format("device mesh ranks must be non-negative, got {}", r));
    check_argument(seen.insert(r).second, fmt::format("rank {} appears twice in the device mesh", r));
  }
}

DeviceMesh DeviceMesh::one_d(DeviceType device_type, int world_size) {
  check_argument(world_size > 0, "a device mesh needs at least one rank");
  std::vector<int> ranks(static_cast<std::size_t>(world_size));
  std::iota(ranks.begin(), ranks.end(), 0);
  return DeviceMesh(device_type, {world_size}, std::move(ranks));
}

std::int64_t DeviceMesh::size(std::int64_t dim) const {
  check_argument(dim >= 0 && dim < ndim(), fmt::format("mesh dimension {} out of range for a {}-D mesh", dim, ndim()));
  return shape_[static_cast<std::size_t>(dim)];
}

std::optional<IntList> DeviceMesh::coordinate_of(int rank) const {
  const auto it = std::find(ranks_.begin(), ranks_.end(), rank);
  if (it == ranks_.end()) return std::nullopt;
  auto linear = static_cast<std::int64_t>(it - ranks_.begin());
  IntList coord(shape_.size());
  for (std::size_t d = shape_.size(); d-- > 0;) {
    coord[d] = linear % shape_[d];
    linear /= shape_[d];
  }
  return coord;
}

std::vector<int> DeviceMesh::group_along(int rank, std::int64_t dim) const {
  const auto coord = coordinate_of(rank);
  check_argument(coord.has_value(), fmt::format("rank {} is not in {}", rank, str()));
  (void)size(dim);
  std::vector<int> group;
  IntList c = *coord;
  for (std::int64_t i = 0; i < shape_[static_cast<std::size_t>(dim)]; ++i) {
    c[static_cast<std::size_t>(dim)] = i;
    std::int64_t linear = 0;
    for (std::size_t d = 0; d < shape_.size(); ++d) linear = linear * shape_[d] + c[d];
    group.push_back(ranks_[static_cast<std::size_t>(linear)]);
  }
  return group;
}

std::string DeviceMesh::str() const {
  return fmt::format("DeviceMesh({}, [{}], ranks [{}])", device_type_name(device_type_), fmt::join(shape_, ", "),
                     fmt::join(ranks_, ", "));
}

// ---- placements and specs ------------------------------------------------------------------------

std::string Placement::str() const {
  switch (kind) {
    case Kind::shard: return fmt::format("Shard({})", dim);
    case Kind::replicate: return "Replicate()";
    case Kind::partial: return "Partial(sum)";
  }
  return "?";
}

void DTensorSpec::validate() const {
  check_argument(static_cast<std::int64_t>(placements.size()) == mesh.ndim(),
                 fmt::format("{} placements for a {}-D mesh: one placement per mesh dimension is needed",
                             placements.size(), mesh.ndim()));
  for (const Placement& p : placements) {
    if (p.is_shard()) {
      check_argument(p.dim >= 0 && p.dim < static_cast<std::int64_t>(global_shape.size()),
                     fmt::format("{} of a {}-D tensor", p.str(), global_shape.size()));
    }
  }
  for (std::int64_t s : global_shape) check_argument(s >= 0, "global sizes must be non-negative");
  check_argument(global_strides.size() == global_shape.size(),
                 fmt::format("{} global strides for a {}-D tensor", global_strides.size(), global_shape.size()));
}

std::string DTensorSpec::str() const {
  std::vector<std::string> p;
  for (const Placement& x : placements) p.push_back(x.str());
  return fmt::format("{} placements [{}] global shape [{}] strides [{}]", mesh.str(), fmt::join(p, ", "),
                     fmt::join(global_shape, ", "), fmt::join(global_strides, ", "));
}

std::pair<std::int64_t, std::int64_t> chunk_of(std::int64_t size, std::int64_t n, std::int64_t index) {
  check_argument(n > 0 && index >= 0 && index < n, fmt::format("chunk {} of {}", index, n));
  check_argument(size >= 0, fmt::format("chunk of a negative size {}", size));
  // ceil(size / n) without forming size + n - 1, which overflows for sizes near INT64_MAX.
  const std::int64_t full = size / n + (size % n != 0 ? 1 : 0);
  std::int64_t start = 0;
  if (__builtin_mul_overflow(full, index, &start)) return {0, size};  // past the end, like any start > size
  if (size < start || full == 0) return {0, size};
  return {std::min(size - start, full), start};
}

LocalShard local_shard_of(const DTensorSpec& spec, int rank) {
  spec.validate();
  const auto coord = spec.mesh.coordinate_of(rank);
  check_argument(coord.has_value(), fmt::format("rank {} is not in {}", rank, spec.mesh.str()));
  LocalShard s{spec.global_shape, IntList(spec.global_shape.size(), 0)};
  for (std::size_t mesh_dim = 0; mesh_dim < spec.placements.size(); ++mesh_dim) {
    const Placement& p = spec.placements[mesh_dim];
    if (!p.is_shard()) continue;
    const auto d = static_cast<std::size_t>(p.dim);
    const auto [length, offset] = chunk_of(s.shape[d], spec.mesh.shape()[mesh_dim], (*coord)[mesh_dim]);
    s.shape[d] = length;
    s.offset[d] += offset;
  }
  return s;
}

// ---- DTensor ----------------------------------------------------------------------------------------

DTensor::DTensor(Tensor local, DTensorSpec spec, int rank)
    : local_(std::move(local)), spec_(std::move(spec)), rank_(rank) {
  check_argument(local_.defined(), "a DTensor needs a local tensor");
  const LocalShard expected = local_shard_of(spec_, rank_);
  const IntList actual(local_.sizes().begin(), local_.sizes().end());
  check_argument(actual == expected.shape,
                 fmt::format("rank {}'s local tensor has shape [{}] but {} gives it [{}]", rank_,
                             fmt::join(actual, ", "), spec_.str(), fmt::join(expected.shape, ", ")));
}

std::shared_ptr<DTensor> DTensor::distribute(const Tensor& full, DeviceMesh mesh, std::vector<Placement> placements,
                                             int rank) {
  DTensorSpec spec{std::move(mesh), std::move(placements), IntList(full.sizes().begin(), full.sizes().end()),
                   Tensor::contiguous_strides(full.sizes())};
  const LocalShard block = local_shard_of(spec, rank);
  Tensor slice = full;
  for (std::size_t d = 0; d < block.shape.size(); ++d) {
    slice = slice.narrow(static_cast<std::int64_t>(d), std::min(block.offset[d], full.sizes()[d]), block.shape[d]);
  }
  return std::make_shared<DTensor>(slice.clone(), std::move(spec), rank);
}

std::shared_ptr<DTensor> DTensor::with_local(Tensor local) const {
  return std::make_shared<DTensor>(std::move(local), spec_, rank_);
}

std::string DTensor::describe() const {
  return fmt::format("DTensor(rank {}, local {}, {})", rank_, local_.describe(), spec_.str());
}

}  // namespace stagekit
