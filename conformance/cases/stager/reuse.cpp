// C.1.1: a stager stays usable after every stage() and after close(), and stages a dict the caller
// changed in place between stages as it is now.
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
  // What close() may drop is the stager's cache, never what a result still holds: the result is checked
  // again whole, its memory probed (still page-locked, still shared and reachable by another process).
  ctx.add_failures(verify_staged(sd, before, memory_expectation(cfg)));
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

// The caller changes its dict in place between two stages, as training does (the step counter, a
// learning rate, optimizer state that appears after the first step, a parameter replaced by a new
// tensor, a list that grows): the second stage stages the dict as it is now, and the first result
// keeps the structure and non-tensor values it was staged with (only tensor bytes alias the cache).
void source_changed_between_stages_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto state = std::make_shared<Dict>();
  state->set(std::int64_t{0}, Value::dict({{"exp_avg", Tensor::random({8}, DType::float32, 101, dev)}}));
  // A small storage (1 KiB) reached only through a narrow view: a stage into its cached buffer copies
  // the whole storage, not only the bytes the view reaches (spec B.1.3).
  const Tensor window_storage = Tensor::random({256}, DType::float32, 106, dev);
  // A tensor attribute holding a plain value, changed between the stages (spec B.1.5: attributes are
  // copied at every stage).
  Tensor scaled = Tensor::random({4}, DType::float32, 107, dev);
  scaled.set_attr("scale", Value(1.5));
  const Value sd = Value::dict({{"model", Value::dict({{"w", Tensor::random({4, 4}, DType::float32, 102, dev)},
                                                       {"b", Tensor::random({4}, DType::float32, 103, dev)},
                                                       {"window", window_storage.narrow(0, 10, 4)},
                                                       {"scaled", scaled}})},
                                {"optimizer", Value::dict({{"step", 1}, {"lr", 0.1}, {"state", Value(state)}})},
                                {"seen", Value::list({"epoch0"})},
                                {"note", "first"}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value first = stage_or_fail(ctx, *stager, sd, "before the change");
  ctx.add_failures(verify_staged(sd, first, memory_expectation(cfg)));

  Dict& optimizer = sd["optimizer"].as_dict();
  optimizer.set(DictKey(std::string("step")), Value(2));
  optimizer.set(DictKey(std::string("lr")), Value(0.05));
  state->set(std::int64_t{1}, Value::dict({{"exp_avg", Tensor::random({8}, DType::float32, 104, dev)}}));
  sd["model"].as_dict().set(DictKey(std::string("w")), Value(Tensor::random({2, 8}, DType::bfloat16, 105, dev)));
  sd["seen"].as_list().items.emplace_back("epoch1");
  sd.as_dict().set(DictKey(std::string("note")), Value("second"));
  Tensor(state->at(std::int64_t{0})["exp_avg"].as_tensor()).fill_(7.0);
  copy_bytes(window_storage.storage(), 0, Tensor::random({256}, DType::float32, 108, dev).storage(), 0, 1024);
  scaled.set_attr("scale", Value(3.0));

  const Value second = stage_or_fail(ctx, *stager, sd, "after the change");
  ctx.add_failures(verify_staged(sd, second, memory_expectation(cfg)));
  ctx.check(first.identity() != second.identity(), "<root>", "new containers",
            "the second stage returned the first result's dict again: each stage builds new containers");
  if (first.kind() != Value::Kind::dict || first.as_dict().size() != 4) return;
  const Value& before = first["optimizer"];
  ctx.check(before.kind() == Value::Kind::dict && before["step"].kind() == Value::Kind::integer &&
                before["step"].as_int() == 1 && before["state"].as_dict().size() == 1,
            "optimizer", "earlier result",
            "the first result's optimizer dict was rewritten by the second stage (step or state entries changed)");
  ctx.check(first["seen"].as_list().items.size() == 1 && first["note"].as_string() == "first", "seen", "earlier result",
            "the first result's list or string leaf was rewritten by the second stage");
  ctx.check(first["model"]["w"].as_tensor().dtype() == DType::float32, "model.w", "earlier result",
            "the first result's tensor entry was replaced by the second stage's");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(reuse) {
  add_matrix(registry, "source_changed_between_stages",
             "The caller changes its dict in place between two stages (step and lr, new optimizer state, a "
             "parameter replaced, a list grown, a tensor attribute set anew, every byte of a small storage reached "
             "through a narrow view): the second stage stages it as it is now, and the first result keeps what it "
             "was staged with",
             "strict", Profile::strict, kBothSources, kFourConfigs, source_changed_between_stages_case);
  add_matrix(registry, "reuse_after_stage",
             "One stager stages two different dicts (dicts, lists, tuples, objects, scalars) alternately three times",
             "strict", Profile::strict, kBothSources, kFourConfigs, reuse_after_stage_case);
  add_matrix(registry, "reuse_after_close",
             "After close() the stager stays usable and allocates new buffers, and earlier results stay as staged: "
             "byte-exact, page-locked and shared as asked, untouched by later stages",
             "strict", Profile::strict, kBothSources, kFourConfigs, reuse_after_close_case);
}

}  // namespace stagekit::conformance
