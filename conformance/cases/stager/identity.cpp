// C.1.7, C.1.11: node identity is preserved, tensor attributes share the memo, cycles are rejected
// (and leave nothing cached).
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void same_nodes_twice_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor t = Tensor::random({5, 5}, DType::float32, 171, dev);
  const Value shared_dict = Value::dict({{"t", t}, {"n", 1}});
  const Value shared_list = Value::list({t, 2});
  const Value shared_object = Value::object("Holder", {{"t", t}});
  // Every other node kind reached twice too (spec C.1.7: the memo covers every node), and two
  // distinct tensor objects that are the same view of one storage (two nodes, one storage).
  const Value shared_tuple = Value::tuple({t, 3});
  const Value shared_named = Value::named_tuple("stagekit_cases.Pair", {{"weight", t}, {"step", 4}});
  const Value shared_set = Value::set({"warmup", 5});
  const Value shared_frozen = Value::set({"frozen", 6}, /*frozen=*/true);
  const Value shared_slots = Value::slots_object("stagekit_cases.Slotted", {{"tensor", t}, {"count", 7}});
  const Tensor view_1 = t.view({25});
  const Tensor view_2 = t.view({25});
  const Value sd = Value::dict({{"a", t},
                                {"b", t},
                                {"in_list", Value::list({t, shared_list})},
                                {"dict_1", shared_dict},
                                {"dict_2", shared_dict},
                                {"list_1", shared_list},
                                {"list_2", shared_list},
                                {"object_1", shared_object},
                                {"object_2", shared_object},
                                {"tuple_1", shared_tuple},
                                {"tuple_2", shared_tuple},
                                {"named_1", shared_named},
                                {"named_2", shared_named},
                                {"set_1", shared_set},
                                {"set_2", shared_set},
                                {"frozen_1", shared_frozen},
                                {"frozen_2", shared_frozen},
                                {"slots_1", shared_slots},
                                {"slots_2", shared_slots},
                                {"view_1", view_1},
                                {"view_2", view_2}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, sd, "aliased nodes");
  ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  ctx.check(staged["a"].as_tensor().is_same(staged["b"].as_tensor()), "b", "identity",
            "the same source tensor under two keys became two staged tensors");
  ctx.check(staged["dict_1"].identity() == staged["dict_2"].identity(), "dict_2", "identity",
            "the same dict twice became two dicts");
  ctx.check(staged["list_1"].identity() == staged["in_list"].at(1).identity(), "in_list[1]", "identity",
            "the same list twice became two lists");
  ctx.check(staged["object_1"].identity() == staged["object_2"].identity(), "object_2", "identity",
            "the same object twice became two objects");
  for (const char* kind : {"tuple", "named", "set", "frozen", "slots"}) {
    const std::string second = fmt::format("{}_2", kind);
    ctx.check(staged[fmt::format("{}_1", kind)].identity() == staged[second].identity(), second, "identity",
              fmt::format("the same {} twice became two", kind));
  }
  ctx.check(!staged["view_1"].as_tensor().is_same(staged["view_2"].as_tensor()) &&
                staged["view_1"].as_tensor().storage().is_alias_of(staged["view_2"].as_tensor().storage()),
            "view_2", "identity",
            "two distinct tensors that are the same view of one storage must stay two tensors over one staged storage");
}

void attribute_tensors_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  Tensor weight = Tensor::random({4, 6}, DType::float32, 181, dev);
  const Tensor aux = Tensor::random({6}, DType::float32, 182, dev);
  weight.set_attr("aux", aux);
  weight.set_attr("aux_view", weight.view({24}).narrow(0, 6, 6));
  const Value sd = Value::dict({{"weight", weight}, {"aux", aux}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, sd, "attribute tensors");
  ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  const Tensor sw = staged["weight"].as_tensor();
  ctx.check(sw.has_attr("aux") && sw.attr("aux").as_tensor().is_same(staged["aux"].as_tensor()), "weight.aux",
            "attribute memo", "the attribute tensor and the same tensor in the dict were staged separately");
  ctx.check(sw.has_attr("aux_view") && sw.attr("aux_view").as_tensor().storage().is_alias_of(sw.storage()),
            "weight.aux_view", "attribute memo", "a view held as an attribute does not share the staged storage");
}

// Builds a cyclic value, runs the check, then breaks the cycle so nothing leaks.
struct Cycle {
  std::string name;
  std::string expected_path;  // where the cycle closes: the node reached again
  std::function<std::pair<Value, std::function<void()>>(Device)> build;
};

// A cycle built for one case, broken again when the case ends (its nodes would never be freed).
struct BuiltCycle {
  BuiltCycle(const Cycle& cycle, Device device) {
    auto [sd, breaker] = cycle.build(device);
    state_dict = std::move(sd);
    break_cycle = std::move(breaker);
  }
  ~BuiltCycle() { break_cycle(); }
  BuiltCycle(const BuiltCycle&) = delete;
  BuiltCycle& operator=(const BuiltCycle&) = delete;

  Value state_dict;
  std::function<void()> break_cycle;
};

std::vector<Cycle> cycles() {
  return {
      {"list_contains_itself", "loop[1]",
       [](Device dev) {
         Value list = Value::list({Tensor::random({2}, DType::float32, 1, dev)});
         list.as_list().items.push_back(list);
         return std::pair{Value::dict({{"loop", list}}),
                          std::function<void()>([list] { list.as_list().items.clear(); })};
       }},
      {"dict_contains_its_parent", "child.up",
       [](Device dev) {
         Value parent = Value::dict({{"w", Tensor::random({2}, DType::float32, 2, dev)}});
         Value child = Value::dict({{"up", parent}});
         parent.as_dict().set("child", child);
         return std::pair{parent, std::function<void()>([child] { child.as_dict().set("up", Value()); })};
       }},
      {"tensor_attribute_is_itself", "t.self",
       [](Device dev) {
         Tensor t = Tensor::random({2}, DType::float32, 3, dev);
         t.set_attr("self", t);
         return std::pair{Value::dict({{"t", t}}),
                          std::function<void()>([t]() mutable { t.set_attr("self", Value()); })};
       }},
      {"object_field_is_its_dict", "holder.owner",
       [](Device dev) {
         Value sd = Value::dict({{"w", Tensor::random({2}, DType::float32, 4, dev)}});
         Value holder = Value::object("Holder", {{"owner", sd}});
         sd.as_dict().set("holder", holder);
         return std::pair{sd, std::function<void()>([holder] { holder.as_object().set_field("owner", Value()); })};
       }},
  };
}

void cycle_case(CaseContext& ctx, Source src, PinShare cfg, const Cycle& cycle) {
  const Device dev = source_device(src);
  const BuiltCycle built(cycle, dev);
  const Value& sd = built.state_dict;
  auto stager = ctx.make_stager(stager_config(cfg));
  bool raised = false;
  try {
    (void)stager->stage(sd);
  } catch (const InvalidArgument& e) {
    raised = true;
    // The whole path, as bad_input requires (a Python stager's message carries it).
    ctx.check(std::string(e.what()).find(cycle.expected_path) != std::string::npos, "<error>", "error names the path",
              fmt::format("the message does not name {} (where the cycle closes): {}", cycle.expected_path, e.what()));
  } catch (const Error& e) {
    raised = true;
    ctx.check(false, "<error>", "error kind",
              fmt::format("expected invalid_argument for a cycle, got {}: {}", error_code_name(e.code()), e.what()));
  }
  ctx.require(raised, "<root>", "cycle rejected", "staging a cyclic state dict did not raise");
  const Value good = Value::dict({{"w", Tensor::random({8}, DType::float32, 5, dev)}});
  const Value staged = stage_or_fail(ctx, *stager, good, "after the rejected cycle");
  ctx.add_failures(verify_staged(good, staged, memory_expectation(cfg)));
}

// All-or-nothing (spec B.1.3): a cycle found after tensors were reached (every cycle above has one
// before it closes) leaves the cache as it was. Only the implementation's own count shows it for
// pageable buffers, so this case needs cache_stats.
void cycle_stages_nothing_case(CaseContext& ctx, Source src, PinShare cfg, const Cycle& cycle) {
  const Device dev = source_device(src);
  const BuiltCycle built(cycle, dev);
  const Value& sd = built.state_dict;
  auto stager = ctx.make_stager(stager_config(cfg));
  const auto before = stager->cache_stats();
  ctx.require(before.has_value(), "<stager>", "cache entries", "cache_stats() returned nothing although declared");
  try {
    (void)stager->stage(sd);
  } catch (const Error&) {  // what is raised is cycle_rejected's business
  }
  const auto after = stager->cache_stats();
  ctx.check(after && after->cached_storages == before->cached_storages && after->cached_bytes == before->cached_bytes,
            "<stager>", "nothing half-staged",
            after ? fmt::format("the rejected cycle left {} cache entries ({} bytes); {} before",
                                after->cached_storages, after->cached_bytes, before->cached_storages)
                  : "cache_stats() returned nothing although declared");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(identity) {
  add_matrix(registry, "same_nodes_twice",
             "A node of every kind (tensor, dict, list, tuple, namedtuple, set, frozenset, object, __slots__ "
             "object) reached twice stages to one node, and two distinct tensors that are the same view stay two "
             "(identity preserved both ways, spec C.1.7)",
             "strict", Profile::strict, kBothSources, kFourConfigs, same_nodes_twice_case);
  add_matrix(registry, "attribute_tensors_share_memo",
             "Tensors held as attributes share the memo and the storages of the dict's tensors", "strict",
             Profile::strict, kBothSources, kFourConfigs, attribute_tensors_case);
  static constexpr PinShare kDefaultsOnly[] = {PinShare{}};
  for (const Cycle& cycle : cycles()) {
    add_matrix(registry, CaseName("cycle_rejected", {cycle.name}),
               fmt::format("A cyclic state dict ({}) is rejected with invalid_argument naming the path; the stager "
                           "stays usable",
                           cycle.name),
               "strict", Profile::strict, kBothSources, kDefaultsOnly,
               [cycle](CaseContext& ctx, Source s, PinShare c) { cycle_case(ctx, s, c, cycle); });
    static constexpr PinShare kPageableOnly[] = {PinShare{false, false}};
    add_matrix(
        registry, CaseName("cycle_stages_nothing", {cycle.name}),
        fmt::format("Staging a cyclic state dict ({}) whose tensors are reached before the cycle closes leaves "
                    "no entry in the cache (counted by cache_stats: an implementation without them is "
                    "not_supported)",
                    cycle.name),
        "strict", Profile::strict, kBothSources, kPageableOnly,
        [cycle](CaseContext& ctx, Source s, PinShare c) { cycle_stages_nothing_case(ctx, s, c, cycle); },
        Requirements{.cache_stats = true});
  }
}

}  // namespace stagekit::conformance
