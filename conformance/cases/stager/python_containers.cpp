// Spec C.1.9 and C.1.10: the container kinds a Python state dict holds besides dicts, lists, tuples
// and dataclasses (dict subclasses, namedtuples, sets and frozensets, objects with __slots__), and
// nn.Parameter leaves. Upstream's deep copy rebuilds every container through its own class, so the
// staged copy keeps each type; a parameter is staged as a plain tensor that does not require grad
// (upstream allocates a plain CPU tensor for every tensor leaf). Both are stagekit's documented
// choices, checked exactly (types, items, memory) by the strict verifier and by the checks below.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

struct ContainersInput {
  Value state_dict;
  Tensor ordered_b, ordered_a, in_default, in_tuple, in_slots;
};

ContainersInput make_containers_input(Device dev) {
  ContainersInput in;
  in.ordered_b = Tensor::random({3, 4}, DType::float32, 91, dev);
  in.ordered_a = Tensor::random({5}, DType::bfloat16, 92, dev);
  in.in_default = Tensor::random({2, 2}, DType::int64, 93, dev);
  in.in_tuple = Tensor::random({6}, DType::float64, 94, dev);
  in.in_slots = Tensor::random({4, 2}, DType::float16, 95, dev);

  Value ordered = Value::dict({{"b", in.ordered_b}, {"a", in.ordered_a}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  Value defaults = Value::dict({{"weights", Value::list({in.in_default, 7})}});
  defaults.as_dict().set_type_name("collections.defaultdict");
  defaults.as_dict().set_default_factory("builtins.list");  // as torch.optim keeps its state: defaultdict(dict)
  in.state_dict = Value::dict({
      {"ordered", ordered},
      {"defaults", defaults},
      {"point", Value::named_tuple("stagekit_cases.Point", {{"weight", in.in_tuple}, {"step", 3}})},
      {"tags", Value::set({"warmup", 1, 2.5, Value::tuple({1, "a"})})},
      {"frozen_tags", Value::set({"frozen", Bytes{{std::byte{1}, std::byte{2}}}}, /*frozen=*/true)},
      {"slotted", Value::slots_object("stagekit_cases.Slotted", {{"tensor", in.in_slots}, {"count", 11}})},
  });
  return in;
}

void python_containers_case(CaseContext& ctx, Source src, PinShare cfg) {
  ContainersInput in = make_containers_input(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, in.state_dict, "containers");
  // Types, items, tensors, sharing and memory kinds, exactly.
  ctx.add_failures(verify_staged(in.state_dict, staged, memory_expectation(cfg)));
  if (ctx.failed()) return;

  // What a user relies on, said plainly as well.
  const Dict& ordered = staged["ordered"].as_dict();
  ctx.check(ordered.type_name() == "collections.OrderedDict" && ordered.size() == 2 &&
                ordered.entries()[0].first == DictKey(std::string("b")),
            "ordered", "dict type", "expected an OrderedDict with its keys in insertion order (b, a)");
  const Dict& defaults = staged["defaults"].as_dict();
  ctx.check(defaults.type_name() == "collections.defaultdict" && defaults.default_factory() == "builtins.list",
            "defaults", "default factory",
            fmt::format("expected a defaultdict whose default_factory is list; staged: {} with factory '{}'",
                        defaults.type_name(), defaults.default_factory()));
  const Tuple& point = staged["point"].as_tuple();
  ctx.check(point.type_name() == "stagekit_cases.Point" && point.items().size() == 2 && point.items()[0].is_tensor(),
            "point", "tuple type", "expected the namedtuple Point(weight, step) around a staged tensor");
  ctx.check(staged["tags"].identity() != in.state_dict["tags"].identity(), "tags", "deep copy",
            "the staged set is the source set: a change to either shows in the other");
  // The staged tensors are independent of the sources.
  in.in_tuple.fill_(5.0);
  in.in_slots.fill_(6.0);
  ctx.check(!Tensor::equal(point.items()[0].as_tensor(), in.in_tuple), "point.weight", "independence",
            "the staged tensor follows the mutated source");
  ctx.check(!Tensor::equal(staged["slotted"]["tensor"].as_tensor(), in.in_slots), "slotted.tensor", "independence",
            "the staged tensor follows the mutated source");
}

void parameters_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor weight = Tensor::random({8, 4}, DType::float32, 96, dev).as_parameter(/*requires_grad=*/true);
  const Tensor frozen = Tensor::random({4}, DType::bfloat16, 97, dev).as_parameter(/*requires_grad=*/false);
  const Tensor buffer = Tensor::random({3}, DType::float32, 98, dev);
  // A plain tensor that requires grad (an activation kept in a state dict) is staged plain too.
  Tensor activation = Tensor::random({5}, DType::float32, 99, dev);
  activation.set_requires_grad(true);
  // A view of a parameter's storage: the staged view shares the staged parameter's buffer.
  const Tensor row = Tensor::from_storage(weight.storage(), DType::float32, {4}, {1}, 4);
  const Value sd = Value::dict(
      {{"weight", weight}, {"frozen", frozen}, {"buffer", buffer}, {"activation", activation}, {"row", row}});
  auto stager = ctx.make_stager(stager_config(cfg));
  // Twice: the second stage refills the buffers of the first (a cache hit) and must stage plain
  // tensors as well.
  for (const char* when : {"the first stage", "a stage into cached buffers"}) {
    const Value staged = stage_or_fail(ctx, *stager, sd, when);
    ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
    for (const char* key : {"weight", "frozen", "activation"}) {
      const Tensor t = staged[key].as_tensor();
      ctx.check(!t.is_parameter() && !t.requires_grad(), key, "plain tensor",
                fmt::format("{}: the staged copy of {} is {}{}; expected a plain tensor that does not require grad",
                            when, std::string(key) == "activation" ? "a tensor that requires grad" : "a parameter",
                            t.is_parameter() ? "a parameter" : "a plain tensor",
                            t.requires_grad() ? " that requires grad" : ""));
    }
  }
  ctx.check(weight.is_parameter() && weight.requires_grad() && frozen.is_parameter() && !frozen.requires_grad() &&
                activation.requires_grad(),
            "weight", "source untouched", "staging changed the source parameters or the grad flag of a source");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(python_containers) {
  add_matrix(registry, "python_containers",
             "Dict subclasses (OrderedDict, a defaultdict with its default_factory), namedtuples, sets and frozensets, "
             "and objects with "
             "__slots__ keep their types and items around staged tensors (spec C.1.9)",
             "strict", Profile::strict, kBothSources, kFourConfigs, python_containers_case);
  add_matrix(registry, "parameters_staged_plain",
             "nn.Parameter leaves, and a plain tensor that requires grad, are staged as plain tensors that do not "
             "require grad, byte-exact, sharing kept, in a first stage and in a stage into cached buffers; the "
             "sources stay as they were (spec C.1.10)",
             "strict", Profile::strict, kBothSources, kFourConfigs, parameters_case);
}

}  // namespace stagekit::conformance
