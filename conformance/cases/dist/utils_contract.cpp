// Spec C.4: what the state-dict utilities do at their edges, single process — offloading aliases CPU
// inputs, the levels an unlisted rank gets back, tuples kept, create_cpu_state_dict's 0-dim and
// shard-less values, and what similarity compares.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../../harness/dist_fixtures.h"
#include "../../harness/fixtures.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

// C.4.7 and C.4.4: offload_state_dict_to_cpu returns a CPU tensor as the same tensor (no copy, as
// upstream), a CUDA tensor as a CPU copy, and keeps a tuple a tuple.
void offload_aliases_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor w = Tensor::random({4, 4}, DType::float32, 601, dev);
  const Tensor b = Tensor::random({4}, DType::float32, 602, dev);
  const Value sd = Value::dict({{"w", w}, {"pair", Value::tuple({b, Value(std::int64_t{2})})}});
  Value out;
  try {
    out = ctx.utilities().offload_state_dict_to_cpu(sd, 0, {}, true);
  } catch (const std::exception& e) {
    ctx.require(false, "<root>", "offload_state_dict_to_cpu", e.what());
  }
  ctx.require(
      out["w"].is_tensor() && out["pair"].kind() == Value::Kind::tuple, "pair", "tuple kept",
      fmt::format("the result holds a {} under pair (a tuple must stay a tuple)", value_kind_name(out["pair"].kind())));
  for (const auto& [path, original, got] :
       {std::tuple{"w", w, out["w"].as_tensor()}, std::tuple{"pair[0]", b, out["pair"].at(0).as_tensor()}}) {
    ctx.check(got.device().is_cpu(), path, "device", "not on the CPU");
    ctx.check(Tensor::equal(got, original.to(Device::cpu())), path, "values", "differ from the source");
    const bool aliases = got.storage().is_alias_of(original.storage());
    if (original.device().is_cpu()) {
      ctx.check(aliases, path, "aliasing", "a CPU input was copied (offloading must return it as it is, as upstream)");
    } else {
      ctx.check(!aliases, path, "aliasing", "a CUDA input was returned instead of a CPU copy");
    }
  }
}

// C.4.5: on a rank ranks_only does not list, every level is replaced as it is produced: a dict by {},
// anything else by None, so a top-level list or tensor comes back as None.
void unlisted_rank_levels_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor t = Tensor::random({3}, DType::float32, 611, dev);
  struct Input {
    const char* name;
    Value value;
    Value::Kind expected;
  };
  const Input inputs[] = {{"a dict", Value::dict({{"t", t}, {"n", Value::dict({{"u", t}})}}), Value::Kind::dict},
                          {"a list", Value::list({t, Value(std::int64_t{1})}), Value::Kind::none},
                          {"a tensor", Value(t), Value::Kind::none}};
  for (const Input& in : inputs) {
    Value out;
    try {
      out = ctx.utilities().offload_state_dict_to_cpu(in.value, 0, {1}, true);
    } catch (const std::exception& e) {
      ctx.check(false, "<root>", "offload_state_dict_to_cpu", fmt::format("{}: {}", in.name, e.what()));
      continue;
    }
    const bool ok = out.kind() == in.expected && (out.kind() != Value::Kind::dict || out.as_dict().size() == 0);
    ctx.check(ok, "<root>", "unlisted rank",
              fmt::format("offloading {} on a rank ranks_only omits gave {} (expected {})", in.name,
                          value_kind_name(out.kind()), in.expected == Value::Kind::dict ? "{}" : "None"));
  }
}

// C.4.8: create_cpu_state_dict makes a 0-dim tensor an unpinned, unshared CPU scalar even when pinned
// shared memory is asked for, and returns a 0-dim DTensor and a ShardedTensor without local shards
// as the original objects.
void create_edge_leaves_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor w = Tensor::random({16, 16}, DType::float32, 621, dev);
  const auto scalar_dt = std::make_shared<DTensor>(
      Tensor::scalar(3.0, DType::float32, dev), DTensorSpec{world_mesh(1, dev), {Placement::replicate()}, {}, {}}, 0);
  ShardedTensorMetadata meta;
  meta.size = {4, 4};
  meta.dtype = DType::float32;
  const auto shardless = std::make_shared<ShardedTensor>(std::vector<LocalTensorShard>{}, meta, 0);
  const Value sd =
      Value::dict({{"scalar", Tensor::scalar(5.0, DType::float32, dev)},
                   {"w", w},
                   {"scalar_dtensor", Value(scalar_dt)},
                   {"no_shards", Value(shardless)},
                   {"state", Value::object("TrainState", {{"ema", Tensor::arange(4, DType::float32, dev)}})}});
  Value out;
  try {
    out = ctx.utilities().create_cpu_state_dict(sd, true, true);
  } catch (const std::exception& e) {
    ctx.require(false, "<root>", "create_cpu_state_dict", e.what());
  }
  const Tensor s = out["scalar"].as_tensor();
  ctx.check(s.dim() == 0 && s.device().is_cpu(), "scalar", "shape", "not a 0-dim CPU tensor");
  if (s.storage().data() != nullptr) {
    const probe::Verdict locked = probe::page_locked(s.storage().data(), s.storage().nbytes());
    ctx.check(!locked.yes, "scalar", "page-locked", "a 0-dim tensor was pinned; " + locked.detail);
    const probe::Verdict shared = probe::shared_mapping(s.storage().data(), s.storage().nbytes());
    ctx.check(!shared.yes, "scalar", "shared", "a 0-dim tensor was put in shared memory; " + shared.detail);
  }
  ctx.check(s.dim() == 0 && s.dtype() == DType::float32 && all_equal(s, 0.0), "scalar", "values",
            "a 0-dim tensor must become a float32 zero (upstream: torch.tensor(0, dtype=...))");
  const Tensor big = out["w"].as_tensor();
  ctx.check(big.dtype() == DType::float32 && all_equal(big, 0.0), "w", "values",
            "the created buffer is not zero-filled (stagekit's choice: upstream's torch.empty leaves it "
            "uninitialised; here it holds no earlier bytes)");
  const probe::Verdict locked = probe::page_locked(big.storage().data(), big.storage().nbytes());
  ctx.check(locked.yes, "w", "page-locked", "expected page-locked; " + locked.detail);
  const probe::Verdict shared = probe::shared_mapping(big.storage().data(), big.storage().nbytes());
  ctx.check(shared.yes, "w", "shared", "expected shared memory; " + shared.detail);
  ctx.check(out["scalar_dtensor"].identity() == Value(scalar_dt).identity(), "scalar_dtensor", "identity",
            "a 0-dim DTensor was not returned as the original object");
  ctx.check(out["no_shards"].identity() == Value(shardless).identity(), "no_shards", "identity",
            "a ShardedTensor without local shards was not returned as the original object");
  // An unknown leaf is deep-copied: another object, and the tensor inside a copy with the same values.
  const Value state = out["state"];
  const Value source_state = sd["state"];
  if (ctx.check(state.kind() == Value::Kind::object && state.identity() != source_state.identity(), "state",
                "deep copy", "the object leaf is not a copy of its own (the source's object was returned)")) {
    const Tensor ema = state["ema"].as_tensor();
    const Tensor source_ema = source_state["ema"].as_tensor();
    ctx.check(!ema.storage().is_alias_of(source_ema.storage()), "state.ema", "deep copy",
              "the tensor inside the object shares the source's storage");
    check_equal(ctx, 0, "state.ema", ema.to(Device::cpu()), source_ema.to(Device::cpu()));
  }
}

// C.4.3: similarity compares structure, tensor dtypes and shapes, DTensor local tensors included; the
// values and types of non-tensor leaves do not matter.
void similarity_compares_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  // A one-rank DTensor over a local tensor of this shape and dtype (on the CPU unless `on` says).
  const auto dtensor = [](const IntList& shape, DType dtype, std::uint64_t seed, Device on) {
    return Value(std::make_shared<DTensor>(
        Tensor::random(shape, dtype, seed, on),
        DTensorSpec{world_mesh(1, on), {Placement::shard(0)}, shape, Tensor::contiguous_strides(shape)}, 0));
  };
  const Device cpu = Device::cpu();
  const Value sd = Value::dict({{"w", Tensor::random({2, 3}, DType::float32, 631, dev)},
                                {"dt", dtensor({4, 3}, DType::float32, 636, dev)},
                                {"step", Value(std::int64_t{1})}});
  auto& u = ctx.utilities();
  struct Companion {
    const char* what;
    Value value;
    bool similar;
  };
  const auto companion = [&](Value w, Value dt, std::optional<Value> step) {
    Value d = Value::dict({{"w", std::move(w)}, {"dt", std::move(dt)}});
    if (step) d.as_dict().set("step", *step);
    return d;
  };
  const Value one(std::int64_t{1});
  const Companion companions[] = {
      {"other tensor values and another non-tensor leaf",
       companion(Tensor::random({2, 3}, DType::float32, 632), dtensor({4, 3}, DType::float32, 637, cpu),
                 Value(std::string("one"))),
       true},
      {"another shape",
       companion(Tensor::random({3, 2}, DType::float32, 633), dtensor({4, 3}, DType::float32, 638, cpu), one), false},
      {"another dtype",
       companion(Tensor::random({2, 3}, DType::float64, 634), dtensor({4, 3}, DType::float32, 639, cpu), one), false},
      {"a DTensor of another local shape",
       companion(Tensor::random({2, 3}, DType::float32, 645), dtensor({6, 2}, DType::float32, 646, cpu), one), false},
      {"a DTensor of another local dtype",
       companion(Tensor::random({2, 3}, DType::float32, 647), dtensor({4, 3}, DType::float64, 648, cpu), one), false},
      {"a missing key",
       companion(Tensor::random({2, 3}, DType::float32, 635), dtensor({4, 3}, DType::float32, 649, cpu), std::nullopt),
       false},
  };
  for (const Companion& c : companions) {
    try {
      const bool got = u.check_state_dict_similarity(sd, c.value);
      ctx.check(got == c.similar, "<root>", "similarity",
                fmt::format("a companion with {} is {}similar", c.what, got ? "" : "not "));
    } catch (const std::exception& e) {
      ctx.check(false, "<root>", "similarity", fmt::format("a companion with {} raised: {}", c.what, e.what()));
    }
  }
}

// B.6.5 on a DTensor: offloading gives a DTensor with the same spec over a CPU local tensor (the
// source's own local tensor when it is already on the CPU).
void offload_dtensor_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const IntList shape = {4, 3};
  const auto dt = std::make_shared<DTensor>(
      Tensor::random(shape, DType::float32, 641, dev),
      DTensorSpec{world_mesh(1, dev), {Placement::shard(0)}, shape, Tensor::contiguous_strides(shape)}, 0);
  Value out;
  try {
    out = ctx.utilities().offload_state_dict_to_cpu(Value::dict({{"dt", Value(dt)}}), 0, {}, true);
  } catch (const std::exception& e) {
    ctx.require(false, "dt", "offload_state_dict_to_cpu", e.what());
  }
  ctx.require(out["dt"].kind() == Value::Kind::dtensor, "dt", "kind",
              fmt::format("offloaded as a {}", value_kind_name(out["dt"].kind())));
  const DTensor& got = *out["dt"].as_dtensor_node();
  ctx.check(got.spec() == dt->spec(), "dt", "spec",
            fmt::format("{} instead of {}", got.spec().str(), dt->spec().str()));
  ctx.check(got.local().device().is_cpu(), "dt._local_tensor", "device", "not on the CPU");
  ctx.check(Tensor::equal(got.local(), dt->local().to(Device::cpu())), "dt._local_tensor", "values",
            "differ from the source");
  if (dev.is_cpu()) {
    ctx.check(got.local().storage().is_alias_of(dt->local().storage()), "dt._local_tensor", "aliasing",
              "a CPU local tensor was copied (offloading returns it as it is)");
  }
}

// B.6.7 on views (C.4.8): create_cpu_state_dict gives every tensor leaf a contiguous buffer of its
// own, views of one storage included (as upstream), and copy_state_dict then fills each with its own
// values.
void create_on_views_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor base = Tensor::random({6, 4}, DType::float32, 651, dev);
  const Value sd = Value::dict({{"base", base}, {"row", base.select(0, 2)}, {"t", base.transpose(0, 1)}});
  auto& u = ctx.utilities();
  Value cpu, filled;
  try {
    cpu = u.create_cpu_state_dict(sd, false, false);
    filled = u.copy_state_dict(sd, cpu, false, true);
  } catch (const std::exception& e) {
    ctx.require(false, "<root>", "create_cpu_state_dict", e.what());
  }
  const std::array<const char*, 3> keys = {"base", "row", "t"};
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Tensor ta = filled[keys[i]].as_tensor();
    ctx.check(ta.device().is_cpu() && Tensor::equal(ta, sd[keys[i]].as_tensor().to(Device::cpu())), keys[i], "values",
              "the filled buffer does not hold the source's values");
    ctx.check(!ta.storage().is_alias_of(base.storage()), keys[i], "copy", "aliases the source");
    ctx.check(ta.is_contiguous() && ta.storage_offset() == 0, keys[i], "layout",
              fmt::format("the created buffer is not contiguous from offset 0 (strides [{}], offset {}; upstream's "
                          "torch.empty(size) is)",
                          fmt::join(ta.strides(), ", "), ta.storage_offset()));
    for (std::size_t j = i + 1; j < keys.size(); ++j) {
      ctx.check(!ta.storage().is_alias_of(filled[keys[j]].as_tensor().storage()), keys[i], "own buffer",
                fmt::format("shares its buffer with {} (every leaf gets its own, as upstream)", keys[j]));
    }
  }
}

// C.4.4, a documented divergence: upstream's iterator-based utilities turn namedtuples into plain
// tuples and dict subclasses into plain dicts; stagekit's keep both (a copy of a state dict has the
// types of the state dict). Checked through offloading, create_cpu_state_dict and copy_state_dict.
void container_types_kept_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor w = Tensor::random({3, 2}, DType::float32, 611, dev);
  const Tensor b = Tensor::random({5}, DType::float32, 612, dev);
  Value ordered = Value::dict({{"w", w}, {"n", Value(1)}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  const Value sd =
      Value::dict({{"ordered", ordered}, {"point", Value::named_tuple("utils.Point", {{"b", b}, {"k", 2}})}});
  auto& utils = ctx.utilities();
  const auto check_types = [&](const Value& out, std::string_view what) {
    const bool dict_kept =
        out["ordered"].kind() == Value::Kind::dict && out["ordered"].as_dict().type_name() == "collections.OrderedDict";
    ctx.check(dict_kept, "ordered", "dict type",
              fmt::format("{}: the OrderedDict came back as {}", what,
                          out["ordered"].kind() == Value::Kind::dict
                              ? (out["ordered"].as_dict().type_name().empty() ? std::string("a plain dict")
                                                                              : out["ordered"].as_dict().type_name())
                              : std::string(value_kind_name(out["ordered"].kind()))));
    const bool tuple_kept = out["point"].kind() == Value::Kind::tuple &&
                            out["point"].as_tuple().type_name() == "utils.Point" &&
                            out["point"].as_tuple().field_names() == std::vector<std::string>{"b", "k"};
    ctx.check(tuple_kept, "point", "tuple type", fmt::format("{}: the namedtuple Point(b, k) lost its type", what));
  };
  try {
    const Value offloaded = utils.offload_state_dict_to_cpu(sd, 0, {}, true);
    check_types(offloaded, "offload_state_dict_to_cpu");
    const Value companion = utils.create_cpu_state_dict(sd, false, false);
    check_types(companion, "create_cpu_state_dict");
    const Value copied = utils.copy_state_dict(sd, companion, false, true);
    check_types(copied, "copy_state_dict");
    if (!ctx.failed()) {
      ctx.check(Tensor::equal(companion["point"].at(0).as_tensor(), b.to(Device::cpu())), "point.b", "values",
                "copy_state_dict did not fill the namedtuple's tensor");
    }
  } catch (const std::exception& e) {
    ctx.check(false, "<root>", "utilities", e.what());
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(utils_contract) {
  const std::array<int, 1> one = {1};
  add_world_cases(registry, "utils", "offload_aliases_cpu_inputs",
                  "offload_state_dict_to_cpu returns CPU tensors as they are (aliasing, no copy, as upstream), CUDA "
                  "tensors as CPU copies, and keeps a tuple a tuple",
                  "strict (spec C.4.4, C.4.7)", Profile::strict, kBothSources, one, offload_aliases_case,
                  utilities_requirements());
  add_world_cases(registry, "utils", "unlisted_rank_levels",
                  "On a rank ranks_only omits, offloading a top-level dict gives {}, a top-level list or tensor None",
                  "strict (spec C.4.5)", Profile::strict, kBothSources, one, unlisted_rank_levels_case,
                  utilities_requirements());
  Requirements create = utilities_requirements();
  create.sharded_tensor = create.pin_memory = create.share_memory = true;
  add_world_cases(
      registry, "utils", "create_cpu_state_dict_edge_leaves",
      "create_cpu_state_dict makes a 0-dim tensor an unpinned, unshared CPU zero even with pinned shared "
      "memory asked for (which a tensor of elements gets, zero-filled), and returns a 0-dim DTensor and a shard-less "
      "ShardedTensor as the original objects, and deep-copies an object leaf (tensors inside included)",
      "strict (spec C.4.8)", Profile::strict, kBothSources, one, create_edge_leaves_case, create, PinShare{true, true});
  add_world_cases(registry, "utils", "offload_dtensor",
                  "offload_state_dict_to_cpu gives a DTensor with the same spec over a CPU local tensor (the source's "
                  "own when already on the CPU)",
                  "strict (spec B.6.5)", Profile::strict, kBothSources, one, offload_dtensor_case,
                  utilities_requirements());
  add_world_cases(registry, "utils", "container_types_kept",
                  "offload_state_dict_to_cpu, create_cpu_state_dict and copy_state_dict keep namedtuples and dict "
                  "subclasses (OrderedDict) as they are (upstream makes them plain tuples and dicts)",
                  "strict (spec C.4.4, a documented divergence)", Profile::strict, kBothSources, one,
                  container_types_kept_case, utilities_requirements());
  add_world_cases(registry, "utils", "create_cpu_state_dict_views",
                  "create_cpu_state_dict gives every tensor leaf its own contiguous buffer, views of one storage "
                  "included (as upstream), and copy_state_dict fills each with its own values",
                  "strict (spec B.6.7, C.4.8)", Profile::strict, kBothSources, one, create_on_views_case,
                  utilities_requirements());
  add_world_cases(registry, "utils", "similarity_compares",
                  "check_state_dict_similarity compares keys, tensor dtypes and shapes (a DTensor's local tensor "
                  "too), not tensor values nor the values or types of non-tensor leaves",
                  "strict (spec C.4.3)", Profile::strict, kBothSources, one, similarity_compares_case,
                  utilities_requirements());
}

}  // namespace stagekit::conformance
