// C.1.1: a stager stays usable after every stage() and after close().
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

Value make_mixed_dict(Device dev, std::uint64_t seed) {
  return Value::dict({{"model", Value::dict({{"w", Tensor::random({16, 16}, DType::float32, seed, dev)}})},
                      {"list", Value::list({Tensor::random({4}, DType::int64, seed + 1, dev), 3, "x"})},
                      {"tuple", Value::tuple({1, 2.0})},
                      {"object", Value::object("Meta", {{"epoch", 3}, {"name", "run"}})},
                      {"step", 12}});
}

void reuse_after_stage_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value a = make_mixed_dict(dev, 71);
  const Value b = make_mixed_dict(dev, 81);
  auto stager = ctx.make_stager(stager_config(cfg));
  for (int round = 0; round < 3; ++round) {
    const Value sa = stage_or_fail(ctx, *stager, a, fmt::format("dict A, round {}", round));
    ctx.add_failures(verify_staged(a, sa, memory_expectation(cfg)));
    const Value sb = stage_or_fail(ctx, *stager, b, fmt::format("dict B, round {}", round));
    ctx.add_failures(verify_staged(b, sb, memory_expectation(cfg)));
  }
}

void reuse_after_close_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value sd = make_mixed_dict(dev, 91);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value before = stage_or_fail(ctx, *stager, sd, "before close");
  const Tensor before_w = before["model"]["w"].as_tensor();
  const Tensor before_copy = before_w.clone();
  stager->close();
  Tensor(sd["model"]["w"].as_tensor()).fill_(5.0);
  const Value after = stage_or_fail(ctx, *stager, sd, "after close");
  ctx.add_failures(verify_staged(sd, after, memory_expectation(cfg)));
  ctx.check(!after["model"]["w"].as_tensor().storage().is_alias_of(before_w.storage()), "model.w", "close",
            "after close() the stager still wrote into a buffer it had released");
  ctx.check(Tensor::equal(before_w, before_copy), "model.w", "close",
            "a result staged before close() was overwritten by a stage after close()");
  stager->close();
  stager->close();  // closing twice is allowed
  const Value again = stage_or_fail(ctx, *stager, sd, "after a second close");
  ctx.add_failures(verify_staged(sd, again, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(reuse) {
  add_matrix(registry, "reuse_after_stage",
             "One stager stages two different dicts (dicts, lists, tuples, objects, scalars) alternately three times",
             "strict", Profile::strict, kBothSources, kFourConfigs, reuse_after_stage_case);
  add_matrix(registry, "reuse_after_close",
             "After close() the stager stays usable, allocates new buffers and leaves earlier results untouched",
             "strict", Profile::strict, kBothSources, kFourConfigs, reuse_after_close_case);
}

}  // namespace stagekit::conformance
