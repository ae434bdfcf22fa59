// The stager on distributed values beyond upstream's test_dtensor (strict): ShardedTensors keep
// their metadata over copied shards, a DTensor's local tensor keeps its storage sharing with other
// leaves, 2-D meshes and uneven (even empty) local shards stage like any tensor, and a DTensor or
// ShardedTensor reached twice stages to one node.
#include <fmt/format.h>

#include "dist_fixtures.h"

namespace stagekit::conformance {
namespace {

void stage_sharded_tensor(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    ShardedTensorMetadata meta;
    meta.size = {5 * ws, 10};
    meta.dtype = DType::float32;
    for (int i = 0; i < ws; ++i) meta.shards.push_back({{5 * i, 0}, {5, 10}, i, device});
    const Tensor local = rank_tensor({5, 10}, r, device);
    const auto st = std::make_shared<ShardedTensor>(
        std::vector<LocalTensorShard>{{local, meta.shards[static_cast<std::size_t>(r)]}}, meta, r);
    auto stager = ctx.make_stager(stager_config(PinShare{true, true}));
    // The same ShardedTensor reached twice (spec C.1.7): one staged node.
    const Value source = Value::dict({{"st", Value(st)}, {"st_again", Value(st)}});
    const Value staged = stager->stage(source);
    ctx.require(staged["st"].kind() == Value::Kind::sharded_tensor, at_rank(r, "st"), "kind", "not a ShardedTensor");
    ctx.check(staged["st"].identity() == staged["st_again"].identity(), at_rank(r, "st_again"), "identity",
              "the same ShardedTensor twice became two ShardedTensors");
    const auto& out = *staged["st"].as_sharded_tensor_node();
    ctx.check(out.metadata() == meta, at_rank(r, "st"), "metadata", "shard or global metadata changed");
    ctx.require(out.local_shards().size() == 1, at_rank(r, "st"), "shards", "one local shard expected");
    check_equal(ctx, r, "st.0", out.local_shards()[0].tensor, local);
    ctx.check(out.local_shards()[0].tensor.device().is_cpu(), at_rank(r, "st.0"), "device", "not on the CPU");
    ctx.check(!out.local_shards()[0].tensor.storage().is_alias_of(local.storage()), at_rank(r, "st.0"), "copy",
              "the staged shard shares the source's storage");
    check_staged_on_rank(ctx, r, source, staged, PinShare{true, true});  // pinned and shared, probed
  });
}

void stage_dtensor_layouts(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    std::vector<int> ranks;
    for (int i = 0; i < ws; ++i) ranks.push_back(i);
    const DeviceMesh mesh2d(device.type, {2, ws / 2}, ranks);
    const Tensor full = Tensor::arange(7 * 3, DType::float32, device).view({7, 3});
    const auto grid = DTensor::distribute(full, mesh2d, {Placement::shard(0), Placement::shard(1)}, r);
    const auto uneven = DTensor::distribute(Tensor::arange(2 * 2, DType::float32, device).view({2, 2}),
                                            world_mesh(ws, device), {Placement::shard(0)}, r);  // empty on ranks >= 2
    // A second leaf viewing the first DTensor's local storage: sharing must survive staging.
    const Value sd = Value::dict({{"grid", Value(grid)},
                                  {"grid_flat", Value(grid->local().numel() > 0 && grid->local().is_contiguous()
                                                          ? grid->local().view({grid->local().numel()})
                                                          : grid->local())},
                                  {"uneven", Value(uneven)},
                                  {"grid_again", Value(grid)}});  // the same DTensor twice (spec C.1.7)
    auto stager = ctx.make_stager(stager_config(PinShare{}));
    const Value staged = stager->stage(sd);
    ctx.check(staged["grid"].identity() == staged["grid_again"].identity(), at_rank(r, "grid_again"), "identity",
              "the same DTensor twice became two DTensors");
    const auto& g = *staged["grid"].as_dtensor_node();
    ctx.check(g.spec() == grid->spec(), at_rank(r, "grid"), "spec", "changed");
    check_equal(ctx, r, "grid._local_tensor", g.local(), grid->local());
    ctx.check(g.local().storage().is_alias_of(staged["grid_flat"].as_tensor().storage()), at_rank(r, "grid_flat"),
              "storage sharing", "the view of the DTensor's local tensor no longer shares its staged storage");
    const auto& u = *staged["uneven"].as_dtensor_node();
    ctx.check(u.local().sizes()[0] == uneven->local().sizes()[0], at_rank(r, "uneven"), "shape",
              fmt::format("local rows {} instead of {}", u.local().sizes()[0], uneven->local().sizes()[0]));
    check_equal(ctx, r, "uneven._local_tensor", u.local(), uneven->local());
    // Exactly: on the CPU, copies independent of their sources, the same strides and offsets.
    check_staged_on_rank(ctx, r, sd, staged, PinShare{});
  });
}

// C.1.17, stagekit's choice: a DTensor with a Partial placement (values still to be summed across
// ranks) is staged like any other, as upstream does: the pending local values copied exactly, the
// Partial placement kept. Staging is a copy, not a reduction, and rejecting it (as one downstream
// checkpointer does) would make a state dict in the middle of a reduction unstageable.
void stage_dtensor_partial(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const IntList shape = {3, 4};
    const auto partial = std::make_shared<DTensor>(
        rank_tensor(shape, r, device),
        DTensorSpec{world_mesh(ws, device), {Placement::partial()}, shape, Tensor::contiguous_strides(shape)}, r);
    const Value sd = Value::dict({{"pending_sum", Value(partial)}});
    auto stager = ctx.make_stager(stager_config(PinShare{}));
    Value staged;
    try {
      staged = stager->stage(sd);
    } catch (const std::exception& e) {
      ctx.require(false, at_rank(r, "pending_sum"), "staged",
                  fmt::format("a Partial DTensor was refused: {}", e.what()));
    }
    ctx.require(staged["pending_sum"].kind() == Value::Kind::dtensor, at_rank(r, "pending_sum"), "kind",
                "not staged as a DTensor");
    const DTensor& out = *staged["pending_sum"].as_dtensor_node();
    ctx.check(out.spec() == partial->spec(), at_rank(r, "pending_sum"), "spec",
              fmt::format("staged spec {} differs from {} (the Partial placement must stay)", out.spec().str(),
                          partial->spec().str()));
    check_equal(ctx, r, "pending_sum._local_tensor", out.local(), partial->local());
    check_staged_on_rank(ctx, r, sd, staged, PinShare{});
  });
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dist_stage) {
  Requirements sharded;
  sharded.sharded_tensor = true;
  sharded.pin_memory = sharded.share_memory = true;
  add_world_cases(registry, "stager", "sharded_tensor",
                  "a ShardedTensor is staged: its local shard copied to pinned shared CPU memory, shard and global "
                  "metadata kept; reached twice, it stages to one ShardedTensor",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, stage_sharded_tensor, sharded,
                  PinShare{true, true});
  Requirements dtensor;
  dtensor.dtensor = true;
  add_world_cases(registry, "stager", "dtensor_layouts",
                  "DTensors on a 2-D mesh [Shard(0), Shard(1)] and with empty local shards stage exactly (CPU copies "
                  "with the same layout, independent of their sources), and a view of a local tensor keeps sharing its "
                  "staged storage; a DTensor reached twice stages to one DTensor",
                  "strict", Profile::strict, kBothSources, kWorld4, stage_dtensor_layouts, dtensor, PinShare{});
  static constexpr std::array<int, 1> kWorld2 = {2};
  add_world_cases(registry, "stager", "dtensor_partial",
                  "A DTensor with a Partial placement is staged like any other (stagekit's choice for spec C.1.17, as "
                  "upstream): its pending local values copied exactly, the Partial placement kept",
                  "strict (spec C.1.17)", Profile::strict, kBothSources, kWorld2, stage_dtensor_partial, dtensor,
                  PinShare{});
}

}  // namespace stagekit::conformance
