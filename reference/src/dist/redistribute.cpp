// MeshGroups (split of the world per mesh dimension) and the redistribution of DTensors and
// ShardedTensors to full tensors.
#include "stagekit/dist/redistribute.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <span>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit::dist {
namespace {

// A contiguous host copy of `t` as raw bytes (row-major).
std::vector<std::byte> host_bytes(const Tensor& t) { return t.to_bytes(); }

Tensor tensor_from_bytes(const std::vector<std::byte>& bytes, IntList shape, DType dtype) {
  Tensor t = Tensor::empty(std::move(shape), dtype);
  if (bytes.size() != t.addressed_bytes()) {
    throw CommunicationError(
        fmt::format("received {} bytes for a {} block of {} bytes", bytes.size(), t.describe(), t.addressed_bytes()));
  }
  if (!bytes.empty()) std::memcpy(t.data_ptr(), bytes.data(), bytes.size());
  return t;
}

// The extent along tensor dimension `d` of this rank's block before mesh dimension `level` is
// undone, i.e. after applying the placements of mesh dimensions [0, level).
std::int64_t extent_before(const DTensorSpec& spec, const IntList& coord, std::int64_t d, std::size_t level) {
  std::int64_t extent = spec.global_shape[static_cast<std::size_t>(d)];
  for (std::size_t i = 0; i < level; ++i) {
    const Placement& p = spec.placements[i];
    if (p.is_shard() && p.dim == d) extent = chunk_of(extent, spec.mesh.shape()[i], coord[i]).first;
  }
  return extent;
}

// Whether blocks concatenated along `dim` are their row-major bytes one after another: every
// dimension before `dim` has size 1.
bool concatenates_contiguously(const Tensor& block, std::int64_t dim) {
  for (std::int64_t d = 0; d < dim; ++d) {
    if (block.sizes()[static_cast<std::size_t>(d)] != 1) return false;
  }
  return true;
}

// One rank's part of gathering the blocks of a group (rank m holds chunk m of `parent` along `dim`)
// straight into one new tensor (its buffer from `pool` when there is one): what it sends, where the
// blocks land, and every rank's byte count. No staging copy: the local block is sent from where it
// lies when it is contiguous.
struct InPlaceGather {
  Tensor local;  // contiguous
  Tensor out;
  std::vector<std::size_t> sizes;
  [[nodiscard]] Communicator::GatherInto item() const {
    return {{static_cast<const std::byte*>(local.data_ptr()),
             static_cast<std::size_t>(local.numel()) * local.element_size()},
            {static_cast<std::byte*>(out.data_ptr()), static_cast<std::size_t>(out.numel()) * out.element_size()},
            sizes};
  }
};

InPlaceGather prepare_in_place(const Tensor& block, std::int64_t dim, std::int64_t parent, std::int64_t parts,
                               HostBufferPool* pool) {
  const auto d = static_cast<std::size_t>(dim);
  std::size_t row_bytes = block.element_size();  // bytes per index along `dim`
  for (std::size_t i = 0; i < block.sizes().size(); ++i) {
    if (i != d) row_bytes *= static_cast<std::size_t>(block.sizes()[i]);
  }
  InPlaceGather g;
  for (std::int64_t m = 0; m < parts; ++m)
    g.sizes.push_back(static_cast<std::size_t>(chunk_of(parent, parts, m).first) * row_bytes);
  IntList shape(block.sizes().begin(), block.sizes().end());
  shape[d] = parent;
  g.local = block.is_contiguous() ? block : block.clone();
  if (pool != nullptr) {
    std::size_t nbytes = block.element_size();
    for (std::int64_t n : shape) nbytes *= static_cast<std::size_t>(n);
    g.out = Tensor::from_storage(pool->take(nbytes), block.dtype(), shape, Tensor::contiguous_strides(shape));
  } else {
    g.out = Tensor::empty(shape, block.dtype());
  }
  return g;
}

// The storages of the gathers: the transfers' memory owner (see Communicator::MemoryOwner).
Communicator::MemoryOwner owner_of(const std::vector<InPlaceGather>& gathers) {
  auto storages = std::make_shared<std::vector<Storage>>();
  for (const InPlaceGather& g : gathers) {
    storages->push_back(g.local.storage());
    storages->push_back(g.out.storage());
  }
  return storages;
}

Tensor gather_blocks_in_place(const Tensor& block, std::int64_t dim, std::int64_t parent, std::int64_t parts,
                              Communicator& group, HostBufferPool* pool) {
  std::vector<InPlaceGather> one{prepare_in_place(block, dim, parent, parts, pool)};
  const InPlaceGather& g = one.front();
  group.all_gather_into(g.item().local, g.item().out, g.sizes, owner_of(one));
  return g.out;
}

// A DTensor gathered by one coalesced transfer: a 1-D host mesh and one Shard placement whose blocks
// concatenate contiguously (decided from the spec and the sizes along dimensions before the sharded
// one, which every rank has alike).
bool coalescable(const DTensor& dt) {
  const DTensorSpec& s = dt.spec();
  return s.mesh.ndim() == 1 && s.mesh.device_type() == DeviceType::cpu && s.placements.size() == 1 &&
         s.placements[0].is_shard() && concatenates_contiguously(dt.local(), s.placements[0].dim);
}

}  // namespace

MeshGroups::MeshGroups(Communicator& world, const DeviceMesh& mesh) : mesh_(mesh) {
  bool is_world = mesh.ndim() == 1 && static_cast<int>(mesh.ranks().size()) == world.size();
  for (std::size_t i = 0; is_world && i < mesh.ranks().size(); ++i) is_world = mesh.ranks()[i] == static_cast<int>(i);
  if (is_world) {  // every rank decides alike: no split, so nothing collective to skip
    along_.push_back(&world);
    return;
  }
  const auto coord = mesh.coordinate_of(world.rank());
  for (std::int64_t dim = 0; dim < mesh.ndim(); ++dim) {
    int color = kUndefinedColor;
    int key = 0;
    if (coord) {
      // Ranks that agree on every other coordinate form one group.
      std::int64_t linear = 0;
      for (std::size_t d = 0; d < coord->size(); ++d) {
        if (static_cast<std::int64_t>(d) == dim) continue;
        linear = linear * mesh.shape()[d] + (*coord)[d];
      }
      color = static_cast<int>(linear);
      key = static_cast<int>((*coord)[static_cast<std::size_t>(dim)]);
    }
    auto group = world.split(color, key);
    if (coord) {
      along_.push_back(group.get());
      owned_.push_back(std::move(group));
    }
  }
}

Communicator& MeshGroups::along(std::int64_t dim) const {
  if (along_.empty()) throw InvalidArgument(fmt::format("this rank is not in {}", mesh_.str()));
  check_argument(dim >= 0 && dim < static_cast<std::int64_t>(along_.size()), fmt::format("mesh dimension {}", dim));
  return *along_[static_cast<std::size_t>(dim)];
}

Tensor concatenate(const std::vector<Tensor>& blocks, std::int64_t dim) {
  check_argument(!blocks.empty(), "nothing to concatenate");
  IntList shape(blocks.front().sizes().begin(), blocks.front().sizes().end());
  check_argument(dim >= 0 && dim < static_cast<std::int64_t>(shape.size()), fmt::format("dimension {}", dim));
  const auto d = static_cast<std::size_t>(dim);
  std::int64_t total = 0;
  for (const Tensor& b : blocks) {
    check_argument(b.dtype() == blocks.front().dtype() && b.dim() == static_cast<std::int64_t>(shape.size()),
                   "blocks of different dtypes or ranks");
    for (std::size_t i = 0; i < shape.size(); ++i) {
      if (i != d) check_argument(b.sizes()[i] == shape[i], "blocks differ outside the concatenated dimension");
    }
    total += b.sizes()[d];
  }
  shape[d] = total;
  Tensor out = Tensor::empty(shape, blocks.front().dtype(), blocks.front().device());
  std::int64_t offset = 0;
  for (const Tensor& b : blocks) {
    if (b.sizes()[d] > 0 && b.numel() > 0) out.narrow(dim, offset, b.sizes()[d]).copy_(b);
    offset += b.sizes()[d];
  }
  return out;
}

Tensor full_tensor(const DTensor& dt, const MeshGroups& groups, HostBufferPool* pool) {
  const DTensorSpec& spec = dt.spec();
  const auto coord = spec.mesh.coordinate_of(dt.rank());
  check_argument(coord.has_value() && groups.member(), fmt::format("rank {} is not in {}", dt.rank(), spec.mesh.str()));
  const Device device = dt.local().device();
  Tensor block = dt.local().device().is_cpu() ? dt.local() : dt.local().to(Device::cpu());
  for (std::size_t level = spec.placements.size(); level-- > 0;) {
    const Placement& p = spec.placements[level];
    Communicator& group = groups.along(static_cast<std::int64_t>(level));
    if (p.kind == Placement::Kind::partial) {
      Tensor reduced = block.is_contiguous() ? block : block.clone();
      if (reduced.is_same(dt.local())) reduced = reduced.clone();  // never reduce into the caller's tensor
      group.all_reduce_tensor(reduced, ReduceOp::sum);
      block = reduced;
    } else if (p.is_shard() && concatenates_contiguously(block, p.dim)) {
      block = gather_blocks_in_place(block, p.dim, extent_before(spec, *coord, p.dim, level), spec.mesh.shape()[level],
                                     group, pool);
    } else if (p.is_shard()) {
      const std::vector<std::byte> mine = host_bytes(block);
      const auto received = group.all_gather_v(mine);
      const std::int64_t parent = extent_before(spec, *coord, p.dim, level);
      std::vector<Tensor> blocks;
      for (std::size_t m = 0; m < received.size(); ++m) {
        IntList shape(block.sizes().begin(), block.sizes().end());
        shape[static_cast<std::size_t>(p.dim)] =
            chunk_of(parent, spec.mesh.shape()[level], static_cast<std::int64_t>(m)).first;
        blocks.push_back(tensor_from_bytes(received[m], std::move(shape), block.dtype()));
      }
      block = concatenate(blocks, p.dim);
    }
  }
  if (block.is_same(dt.local())) block = block.clone();  // all-Replicate: still a new tensor
  return device.is_cpu() ? block : block.to(device);
}

std::vector<Tensor> full_tensors(std::span<const std::shared_ptr<DTensor>> dts,
                                 const std::function<const MeshGroups&(const DeviceMesh&)>& groups_for,
                                 HostBufferPool* pool) {
  std::vector<Tensor> out(dts.size());
  std::vector<std::pair<DeviceMesh, std::vector<std::size_t>>> by_mesh;  // coalescable, per mesh
  for (std::size_t i = 0; i < dts.size(); ++i) {
    const DTensor& dt = *dts[i];
    if (!coalescable(dt)) {
      out[i] = full_tensor(dt, groups_for(dt.spec().mesh), pool);
      continue;
    }
    auto it = std::find_if(by_mesh.begin(), by_mesh.end(), [&](const auto& m) { return m.first == dt.spec().mesh; });
    if (it == by_mesh.end()) {
      by_mesh.emplace_back(dt.spec().mesh, std::vector<std::size_t>{});
      it = by_mesh.end() - 1;
    }
    it->second.push_back(i);
  }
  for (const auto& [mesh, indices] : by_mesh) {
    Communicator& group = groups_for(mesh).along(0);
    std::vector<InPlaceGather> gathers;
    std::vector<Communicator::GatherInto> items;
    for (std::size_t i : indices) {
      const DTensor& dt = *dts[i];
      const std::int64_t dim = dt.spec().placements[0].dim;
      const Tensor block = dt.local().device().is_cpu() ? dt.local() : dt.local().to(Device::cpu());
      gathers.push_back(
          prepare_in_place(block, dim, dt.spec().global_shape[static_cast<std::size_t>(dim)], mesh.shape()[0], pool));
      items.push_back(gathers.back().item());
    }
    group.all_gather_into_many(items, owner_of(gathers));
    for (std::size_t k = 0; k < indices.size(); ++k) {
      const Device device = dts[indices[k]]->local().device();
      out[indices[k]] = device.is_cpu() ? gathers[k].out : gathers[k].out.to(device);
    }
  }
  return out;
}

std::shared_ptr<DTensor> redistribute_to_replicate(const DTensor& dt, const MeshGroups& groups) {
  DTensorSpec spec = dt.spec();
  spec.placements.assign(spec.placements.size(), Placement::replicate());
  return std::make_shared<DTensor>(full_tensor(dt, groups), std::move(spec), dt.rank());
}

Tensor full_tensor(const ShardedTensor& st, Communicator& world, Device working) {
  check_argument(!working.is_meta(), "a ShardedTensor cannot be gathered on the meta device: it holds no data");
  if (working.is_cuda() && !cuda::available()) {
    throw Unsupported(
        fmt::format("a ShardedTensor cannot be gathered on {}: {}", working.str(), cuda::availability().reason));
  }
  // Every rank contributes all its local shards: [count][per shard: offsets, sizes, bytes].
  std::vector<std::byte> mine;
  auto put = [&](const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    mine.insert(mine.end(), b, b + n);
  };
  const std::size_t ndim = st.size().size();
  const std::uint64_t count = st.local_shards().size();
  put(&count, sizeof count);
  for (const LocalTensorShard& s : st.local_shards()) {
    put(s.metadata.offsets.data(), ndim * sizeof(std::int64_t));
    put(s.metadata.sizes.data(), ndim * sizeof(std::int64_t));
    const auto bytes = host_bytes(s.tensor);
    const std::uint64_t n = bytes.size();
    put(&n, sizeof n);
    put(bytes.data(), bytes.size());
  }
  const auto received = world.all_gather_v(mine);
  Tensor full = Tensor::zeros(st.size(), st.metadata().dtype);
  for (const auto& buffer : received) {
    std::size_t at = 0;
    auto get = [&](void* p, std::size_t n) {
      if (at + n > buffer.size()) throw CommunicationError("truncated sharded-tensor block in the all-gather");
      std::memcpy(p, buffer.data() + at, n);
      at += n;
    };
    std::uint64_t shards = 0;
    get(&shards, sizeof shards);
    for (std::uint64_t i = 0; i < shards; ++i) {
      IntList offsets(ndim), sizes(ndim);
      get(offsets.data(), ndim * sizeof(std::int64_t));
      get(sizes.data(), ndim * sizeof(std::int64_t));
      std::uint64_t n = 0;
      get(&n, sizeof n);
      std::vector<std::byte> bytes(n);
      get(bytes.data(), n);
      Tensor block = tensor_from_bytes(bytes, sizes, st.metadata().dtype);
      Tensor target = full;
      for (std::size_t d = 0; d < ndim; ++d) target = target.narrow(static_cast<std::int64_t>(d), offsets[d], sizes[d]);
      if (block.numel() > 0) target.copy_(block);
    }
  }
  const Device device = st.local_shards().empty() ? Device::cpu() : st.local_shards().front().tensor.device();
  if (!working.is_cpu()) full = full.to(working);  // where upstream's all-gather output lives
  return device == working ? full : full.to(device);
}

}  // namespace stagekit::dist
