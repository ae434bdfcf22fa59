// Replication beyond upstream's tests (strict, spec C.3.2 and C.3.8): storage sharing between leaves
// survives the exchange and the replica file, every non-tensor leaf kind and DTensors round-trip, and
// partners are paired in the rank space of the communicator the stager was made with.
#include <fmt/format.h>
#include <fmt/std.h>

#include <array>
#include <chrono>

#include "replication_fixtures.h"

namespace stagekit::conformance {
namespace {

// Stages `make(r)` on every rank and checks the result and the persisted file against `make(p)`.
template <class Make>
void round_trip(CaseContext& ctx, int ws, Make make) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager) return;
    if (auto got = replicate_or_fail(ctx, r, *stager, make(r), "stage")) {
      check_replica(ctx, r, fmt::format("replica of rank {}", p), *got, make(p));
      if (auto loaded = load_or_fail(ctx, r, stager->persisted_path())) {
        check_replica(ctx, r, fmt::format("replica of rank {} loaded from its file", p), *loaded, make(p));
      }
    }
    stager->close();
  });
}

void storage_sharing(CaseContext& ctx, Source, int ws) { round_trip(ctx, ws, shared_storage_state_dict); }

void mixed_leaves(CaseContext& ctx, Source, int ws) { round_trip(ctx, ws, mixed_leaves_state_dict); }

// Upstream's test_replication_dtensors checks only the returned replica (and only each DTensor's
// local block and first placement); here the persisted file must load back to the same DTensors too,
// spec and rank (the partner's) included.
void dtensor_round_trip(CaseContext& ctx, Source, int ws) {
  round_trip(ctx, ws, [ws](int rank) { return dtensor_state_dict(rank, ws); });
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
                        "views, offsets, strides, stride-0 broadcasts and storage sharing between leaves survive the "
                        "exchange and the replica file, in both directions",
                        "strict", Profile::strict, kWorlds2And4, storage_sharing);
  add_replication_cases(
      registry, "mixed_leaves",
      "ints, floats (NaN, -0.0), strings, bytes, None, bools, lists, tuples, int keys, objects "
      "(frozen too), a node reached twice, empty dicts, lists and tuples (nested too), empty and 0-dim tensors, "
      "several dtypes, and the Python container "
      "kinds (OrderedDict, a defaultdict with its default_factory, namedtuple, set, frozenset, __slots__ object) "
      "round-trip exactly",
      "strict", Profile::strict, kWorlds2And4, mixed_leaves);
  Requirements dtensor;
  dtensor.dtensor = true;
  add_replication_cases(registry, "dtensor_round_trip",
                        "DTensors (Shard(0) and Replicate) keep their local block, spec and rank (the partner's) "
                        "in the returned replica and in the replica file loaded back",
                        "strict", Profile::strict, kWorlds2And4, dtensor_round_trip, dtensor);
  add_replication_cases(registry, "parameter_leaf_refused",
                        "a parameter (nn.Parameter) leaf is refused with an invalid_argument error naming its path, "
                        "the partner gets an error at once and the other pairs replicate as usual",
                        "strict (spec C.3.9)", Profile::strict, kWorlds2And4, parameter_leaf_refused);
  add_replication_cases(registry, "subgroup_ranks",
                        "a stager made with a sub-communicator pairs ranks in that communicator's rank space", "strict",
                        Profile::strict, kWorld4, subgroup_ranks);
}

}  // namespace stagekit::conformance
