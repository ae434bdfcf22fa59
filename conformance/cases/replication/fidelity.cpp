// Replication beyond upstream's tests (strict, spec C.3.2 and C.3.8): storage sharing between leaves
// survives the exchange and the replica file, every non-tensor leaf kind round-trips, and partners
// are paired in the rank space of the communicator the stager was made with.
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

}  // namespace

STAGEKIT_CONFORMANCE_CASES(replication_fidelity) {
  add_replication_cases(registry, "storage_sharing",
                        "views, offsets, strides, stride-0 broadcasts and storage sharing between leaves survive the "
                        "exchange and the replica file, in both directions",
                        "strict", Profile::strict, kWorlds2And4, storage_sharing);
  add_replication_cases(
      registry, "mixed_leaves",
      "ints, floats (NaN, -0.0), strings, bytes, None, bools, lists, tuples, int keys, objects "
      "(frozen too), a node reached twice, empty and 0-dim tensors and several dtypes round-trip exactly",
      "strict", Profile::strict, kWorlds2And4, mixed_leaves);
  add_replication_cases(registry, "subgroup_ranks",
                        "a stager made with a sub-communicator pairs ranks in that communicator's rank space", "strict",
                        Profile::strict, kWorld4, subgroup_ranks);
}

}  // namespace stagekit::conformance
