// Spec B.6.2, B.6.5-B.6.8 on a ShardedTensor that holds two local shards on this rank: offloading,
// create_cpu_state_dict and copy_state_dict handle every local shard, not only the first, and keep
// the ShardedTensor's metadata (every shard's offsets, sizes and placement rank; the global size and
// dtype) as they are.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../../harness/dist_fixtures.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

// A [6, 4] ShardedTensor of rows 0-1 and 2-5, both held by rank 0 of a world of one.
std::shared_ptr<ShardedTensor> two_shard_input(Device dev) {
  ShardedTensorMetadata meta;
  meta.size = {6, 4};
  meta.dtype = DType::float32;
  meta.shards.push_back({{0, 0}, {2, 4}, 0, dev});
  meta.shards.push_back({{2, 0}, {4, 4}, 0, dev});
  std::vector<LocalTensorShard> locals;
  locals.push_back({Tensor::random({2, 4}, DType::float32, 671, dev), meta.shards[0]});
  locals.push_back({Tensor::random({4, 4}, DType::float32, 672, dev), meta.shards[1]});
  return std::make_shared<ShardedTensor>(std::move(locals), meta, 0);
}

std::string shard_text(const ShardMetadata& m) {
  return fmt::format("offsets [{}], sizes [{}], rank {}", fmt::join(m.offsets, ", "), fmt::join(m.sizes, ", "),
                     m.placement_rank);
}

// The result of `what` is a ShardedTensor with the source's metadata and as many local shards, each
// on the CPU with its source shard's metadata; returns whether the shape is right to go on.
bool check_shards_kept(CaseContext& ctx, const ShardedTensor& source, const Value& got, std::string_view what) {
  if (!ctx.check(got.kind() == Value::Kind::sharded_tensor, "st", "kind",
                 fmt::format("{} gave a {} for a ShardedTensor", what, value_kind_name(got.kind())))) {
    return false;
  }
  const ShardedTensor& st = *got.as_sharded_tensor_node();
  const ShardedTensorMetadata& a = st.metadata();
  const ShardedTensorMetadata& b = source.metadata();
  ctx.check(
      a.size == b.size && a.dtype == b.dtype && a.shards.size() == b.shards.size(), "st", "metadata",
      fmt::format("{}: global size [{}] {} with {} shards, expected [{}] {} with {}", what, fmt::join(a.size, ", "),
                  dtype_name(a.dtype), a.shards.size(), fmt::join(b.size, ", "), dtype_name(b.dtype), b.shards.size()));
  for (std::size_t i = 0; i < std::min(a.shards.size(), b.shards.size()); ++i) {
    const bool same = a.shards[i].offsets == b.shards[i].offsets && a.shards[i].sizes == b.shards[i].sizes &&
                      a.shards[i].placement_rank == b.shards[i].placement_rank;
    ctx.check(same, fmt::format("st.metadata.shards.{}", i), "shard metadata",
              fmt::format("{}: {} instead of {}", what, shard_text(a.shards[i]), shard_text(b.shards[i])));
  }
  if (!ctx.check(st.local_shards().size() == source.local_shards().size(), "st", "local shards",
                 fmt::format("{}: {} local shards, the source has {}", what, st.local_shards().size(),
                             source.local_shards().size()))) {
    return false;
  }
  for (std::size_t i = 0; i < st.local_shards().size(); ++i) {
    const LocalTensorShard& g = st.local_shards()[i];
    const LocalTensorShard& s = source.local_shards()[i];
    const std::string path = fmt::format("st.{}", i);
    const bool same = g.metadata.offsets == s.metadata.offsets && g.metadata.sizes == s.metadata.sizes &&
                      g.metadata.placement_rank == s.metadata.placement_rank;
    ctx.check(same, path, "shard metadata",
              fmt::format("{}: {} instead of {}", what, shard_text(g.metadata), shard_text(s.metadata)));
    ctx.check(g.tensor.device().is_cpu(), path, "device", fmt::format("{}: not on the CPU", what));
    ctx.check(IntList(g.tensor.sizes().begin(), g.tensor.sizes().end()) == s.metadata.sizes, path, "shape",
              fmt::format("{}: the local tensor's shape is not the shard's sizes", what));
  }
  return true;
}

void sharded_local_shards_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const auto source = two_shard_input(dev);
  const Value sd = Value::dict({{"st", Value(source)}});
  auto& u = ctx.utilities();
  try {
    // Offloading: every shard on the CPU with its values.
    const Value off = u.offload_state_dict_to_cpu(sd, 0, {}, true)["st"];
    if (check_shards_kept(ctx, *source, off, "offload_state_dict_to_cpu")) {
      for (std::size_t i = 0; i < 2; ++i) {
        check_equal(ctx, 0, fmt::format("st.{}", i), off.as_sharded_tensor_node()->local_shards()[i].tensor,
                    source->local_shards()[i].tensor.to(Device::cpu()));
      }
    }
    // create_cpu_state_dict: every shard gets a buffer of its own, pinned and shared as asked.
    const Value created = u.create_cpu_state_dict(sd, true, true);
    if (!check_shards_kept(ctx, *source, created["st"], "create_cpu_state_dict")) return;
    const auto& buffers = created["st"].as_sharded_tensor_node()->local_shards();
    for (std::size_t i = 0; i < 2; ++i) {
      const std::string path = fmt::format("st.{}", i);
      const Tensor& b = buffers[i].tensor;
      ctx.check(!b.storage().is_alias_of(source->local_shards()[i].tensor.storage()) &&
                    !b.storage().is_alias_of(buffers[1 - i].tensor.storage()),
                path, "own buffer", "create_cpu_state_dict gave this shard the source's or the other shard's buffer");
      const probe::Verdict locked = probe::page_locked(b.data_ptr(), b.addressed_bytes());
      ctx.check(locked.yes, path, "page-locked", "create_cpu_state_dict(pin_memory=true): " + locked.detail);
      const probe::Verdict shared = probe::shared_mapping(b.data_ptr(), b.addressed_bytes());
      ctx.check(shared.yes, path, "shared memory", "create_cpu_state_dict(share_memory=true): " + shared.detail);
    }
    // Similar, and no longer similar once the second shard has another shape.
    ctx.check(u.check_state_dict_similarity(sd, created), "st", "similarity",
              "the created CPU state dict is not similar to its source");
    const ShardMetadata three_rows{{2, 0}, {3, 4}, 0, Device::cpu()};
    const auto other = std::make_shared<ShardedTensor>(
        std::vector<LocalTensorShard>{buffers[0], {Tensor::zeros({3, 4}, DType::float32), three_rows}},
        source->metadata(), 0);
    ctx.check(!u.check_state_dict_similarity(sd, Value::dict({{"st", Value(other)}})), "st.1", "similarity",
              "a companion whose second local shard has 3 rows instead of 4 is reported similar");
    ShardedTensorMetadata f64_meta = source->metadata();  // the same shards in float64
    f64_meta.dtype = DType::float64;
    const auto f64 = std::make_shared<ShardedTensor>(
        std::vector<LocalTensorShard>{{Tensor::zeros({2, 4}, DType::float64), buffers[0].metadata},
                                      {Tensor::zeros({4, 4}, DType::float64), buffers[1].metadata}},
        f64_meta, 0);
    ctx.check(!u.check_state_dict_similarity(sd, Value::dict({{"st", Value(f64)}})), "st", "similarity",
              "a companion whose local shards are float64 instead of float32 is reported similar");
    // copy_state_dict fills every shard.
    const Value copied = u.copy_state_dict(sd, created, false, true);
    for (std::size_t i = 0; i < 2; ++i) {
      check_equal(ctx, 0, fmt::format("st.{}", i), buffers[i].tensor,
                  source->local_shards()[i].tensor.to(Device::cpu()));
    }
    ctx.check(copied["st"].identity() == created["st"].identity(), "st", "identity",
              "copy_state_dict's result does not hold the companion's ShardedTensor");
  } catch (const std::exception& e) {
    ctx.check(false, "st", "utilities", e.what());
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(utils_shards) {
  const std::array<int, 1> one = {1};
  Requirements r = utilities_requirements();
  r.sharded_tensor = r.pin_memory = r.share_memory = true;
  add_world_cases(registry, "utils", "sharded_tensor_local_shards",
                  "A ShardedTensor with two local shards on one rank: offload_state_dict_to_cpu, create_cpu_state_dict "
                  "and copy_state_dict handle both shards (CPU, own pinned shared buffers, values) and keep the "
                  "metadata of every shard (offsets, sizes, placement rank), the global size and the dtype; "
                  "check_state_dict_similarity compares every local shard's shape and dtype",
                  "strict (spec B.6.2, B.6.5-B.6.8)", Profile::strict, kBothSources, one, sharded_local_shards_case, r,
                  PinShare{true, true});
}

}  // namespace stagekit::conformance
