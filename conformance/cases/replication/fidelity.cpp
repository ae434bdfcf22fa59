// Replication beyond upstream's tests (strict, spec C.3.2 and C.3.8): storage sharing between leaves
// survives the exchange and the replica file, every non-tensor leaf kind, DTensors and ShardedTensors
// with several local shards round-trip, and partners are paired in the rank space of the
// communicator the stager was made with.
#include <fmt/format.h>
#include <fmt/std.h>

#include <array>
#include <chrono>

#include "replication_fixtures.h"

namespace stagekit::conformance {
namespace {

// Stages `input(r)` on every rank and checks the result and the persisted file against
// `expected(r, p)`, p the partner.
template <class Input, class Expected>
void round_trip(CaseContext& ctx, int ws, Input input, Expected expected) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager) return;
    const Value want = expected(r, p);
    if (auto got = replicate_or_fail(ctx, r, *stager, input(r), "stage")) {
      check_replica(ctx, r, fmt::format("replica of rank {}", p), *got, want);
      check_persisted_replica(ctx, r, *stager, want, fmt::format("replica of rank {} loaded from its file", p));
    }
    stager->close();
  });
}

// The partner's `make(p)`, for a state dict that depends on the rank alone.
template <class Make>
void round_trip(CaseContext& ctx, int ws, Make make) {
  round_trip(ctx, ws, make, [&make](int, int p) { return make(p); });
}

void storage_sharing(CaseContext& ctx, Source, int ws) { round_trip(ctx, ws, shared_storage_state_dict); }

void mixed_leaves(CaseContext& ctx, Source, int ws) { round_trip(ctx, ws, mixed_leaves_state_dict); }

// Upstream's DTensors (Shard(0), Replicate) plus a Shard(1) one and a Partial(sum) one, whose local
// values are the rank's pending addend: a replica that records the placement as anything else (the
// pending sum taken for the full value) is caught.
Value round_trip_dtensors(int rank, int ws) {
  Value sd = dtensor_state_dict(rank, ws);
  const DeviceMesh mesh = world_mesh(ws, Device::cpu());
  const Tensor columns = Tensor::arange(6 * 8, DType::float32).view({6, 8});
  sd.as_dict().set("column_sharded", Value(DTensor::distribute(columns, mesh, {Placement::shard(1)}, rank)));
  const IntList shape = {3, 4};
  sd.as_dict().set("pending_sum",
                   Value(std::make_shared<DTensor>(
                       rank_tensor(shape, rank, Device::cpu(), 41),
                       DTensorSpec{mesh, {Placement::partial()}, shape, Tensor::contiguous_strides(shape)}, rank)));
  return sd;
}

// Upstream's test_replication_dtensors checks only the returned replica (and only each DTensor's
// local block and first placement); here the persisted file must load back to the same DTensors too,
// spec and rank (the partner's) included, for Shard(1) and Partial placements as well.
void dtensor_round_trip(CaseContext& ctx, Source, int ws) {
  round_trip(ctx, ws, [ws](int rank) { return round_trip_dtensors(rank, ws); });
}

// Each rank holds two local shards of one ShardedTensor (its two row blocks of a 16*ws x 4 tensor,
// values 4*row + col). `placed_on` is the rank the local shards are placed on: the sender's own
// rank in what it sends, the receiving rank in the replica (as upstream places them).
Value two_shard_state_dict(int rank, int ws, int placed_on) {
  ShardedTensorMetadata meta;
  meta.size = {16 * ws, 4};
  meta.dtype = DType::float32;
  for (int i = 0; i < 2 * ws; ++i) meta.shards.push_back({{8 * i, 0}, {8, 4}, i / 2, Device::cpu()});
  const Tensor full = Tensor::arange(16 * ws * 4, DType::float32).view({16 * ws, 4});
  std::vector<LocalTensorShard> shards;
  for (int i = 2 * rank; i < 2 * rank + 2; ++i) {
    ShardMetadata placed = meta.shards[static_cast<std::size_t>(i)];
    placed.placement_rank = placed_on;
    shards.push_back({full.narrow(0, 8 * i, 8).clone(), placed});
  }
  return Value::dict({{"two_shards", Value(std::make_shared<ShardedTensor>(std::move(shards), meta, placed_on))},
                      {"rank_scalar", Tensor::scalar(static_cast<double>(rank), DType::float32)}});
}

// Upstream's test_replication_sharded_tensors has one local shard per rank; a rank may hold several
// (two row blocks here): every one arrives, placed on the receiving rank, in the returned replica and
// in the file loaded back.
void sharded_tensor_round_trip(CaseContext& ctx, Source, int ws) {
  round_trip(
      ctx, ws, [ws](int r) { return two_shard_state_dict(r, ws, r); },
      [ws](int r, int p) { return two_shard_state_dict(p, ws, r); });
}

void subgroup_ranks(CaseContext& ctx, Source, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    // Pairs {0, 1}, {2, 3}, ...: in each group of two the partner is the other member, whereas the
    // world's pairing would be r + ws/2. A stager that takes ranks from the world gets this wrong.
    const auto group = world.split(r / 2, r);
    const int expected_partner = r ^ 1;
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, *group, replication_config(dir.path()));
    if (!stager) return;
    if (auto got = replicate_or_fail(ctx, r, *stager, simple_state_dict(r), "stage")) {
      check_replica(ctx, r,
                    fmt::format("replica of world rank {} (group rank {})", expected_partner, group->rank() ^ 1), *got,
                    simple_state_dict(expected_partner));
    }
    stager->close();
  });
}

// Spec C.3.9: a parameter leaf is refused (as upstream's transport refuses tensor subclasses) with an
// InvalidArgument naming its path; the partner is told instead of waiting, and the other pairs are
// not disturbed.
void parameter_leaf_refused(CaseContext& ctx, Source, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    Value sd = simple_state_dict(r);
    if (r == 0) {
      sd = Value::dict({{"layer", Value::dict({{"weight", Tensor::random({4}, DType::float32, 7).as_parameter()}})},
                        {"step", Value(1)}});
    }
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager) return;
    const auto start = std::chrono::steady_clock::now();
    std::optional<Error> error;
    std::optional<Value> got;
    try {
      got = stager->stage(sd);
    } catch (const Error& e) {
      error = e;
    } catch (const std::exception& e) {
      ctx.check(false, at_rank(r, "<stager>"), "error kind", fmt::format("not a stagekit error: {}", e.what()));
    }
    const auto took = std::chrono::steady_clock::now() - start;
    if (r == 0) {
      ctx.check(error && error->code() == ErrorCode::invalid_argument && error->path() == "layer.weight",
                at_rank(r, "layer.weight"), "parameter refused",
                error ? fmt::format("expected an invalid_argument error at layer.weight, got {} at '{}': {}",
                                    error_code_name(error->code()), error->path(), error->detail())
                      : std::string("staging a parameter leaf did not raise"));
    } else if (p == 0) {
      ctx.check(error.has_value(), at_rank(r, "<stager>"), "partner told",
                "the partner of the rank whose state dict was refused got no error");
    } else {
      ctx.check(!error, at_rank(r, "<stager>"), "other pairs undisturbed",
                error ? error->what() : std::string("an unrelated pair failed"));
      if (got) check_replica(ctx, r, fmt::format("replica of rank {}", p), *got, simple_state_dict(p));
    }
    // "At once": well inside the exchange's timeout, which a partner left waiting would run into.
    const auto timeout = replication_config(dir.path()).timeout;
    ctx.check(took < timeout / 4, at_rank(r, "<stager>"), "no wait",
              fmt::format("stage() took {} ms of the exchange's {} ms timeout: the refusal was not told at once",
                          std::chrono::duration_cast<std::chrono::milliseconds>(took).count(), timeout.count()));
    stager->close();
  });
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(replication_fidelity) {
  add_replication_cases(registry, "storage_sharing",
                        "views, offsets, strides, stride-0 broadcasts and storage sharing between leaves, and tensor "
                        "attributes (plain values, a tensor and a container), survive the exchange and the replica "
                        "file, in both directions",
                        "strict", Profile::strict, kWorlds2And4, storage_sharing);
  add_replication_cases(
      registry, "mixed_leaves",
      "ints, floats (NaN, -0.0), strings, bytes, None, bools, lists, tuples, int keys, objects "
      "(frozen too), a node reached twice, empty dicts, lists and tuples (nested too), empty and 0-dim tensors, "
      "a tensor of every dtype (arbitrary bits), and the Python container "
      "kinds (OrderedDict, a defaultdict with its default_factory, namedtuple, set, frozenset, __slots__ object) "
      "round-trip exactly",
      "strict", Profile::strict, kWorlds2And4, mixed_leaves);
  Requirements dtensor;
  dtensor.dtensor = true;
  add_replication_cases(registry, "dtensor_round_trip",
                        "DTensors (Shard(0), Shard(1), Replicate and Partial(sum)) keep their local block, spec and "
                        "rank (the partner's) in the returned replica and in the replica file loaded back",
                        "strict", Profile::strict, kWorlds2And4, dtensor_round_trip, dtensor);
  Requirements sharded;
  sharded.sharded_tensor = true;
  add_replication_cases(registry, "sharded_tensor_round_trip",
                        "a ShardedTensor with two local shards on each rank arrives with both (tensors, offsets and "
                        "sizes) placed on the receiving rank, its global metadata kept, in the returned replica and "
                        "in the replica file loaded back",
                        "strict", Profile::strict, kWorlds2And4, sharded_tensor_round_trip, sharded);
  add_replication_cases(registry, "parameter_leaf_refused",
                        "a parameter (nn.Parameter) leaf is refused with an invalid_argument error naming its path, "
                        "the partner gets an error at once and the other pairs replicate as usual",
                        "strict (spec C.3.9)", Profile::strict, kWorlds2And4, parameter_leaf_refused);
  add_replication_cases(registry, "subgroup_ranks",
                        "a stager made with a sub-communicator pairs ranks in that communicator's rank space", "strict",
                        Profile::strict, kWorld4, subgroup_ranks);
}

}  // namespace stagekit::conformance
