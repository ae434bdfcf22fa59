// distribute_state_dict and broadcast_state_dict (spec B.6.11, B.6.12, C.4.10): every rank ends with
// its block of each full tensor in its DTensors, full tensors where it holds plain tensors, CPU
// copies of 0-dim tensors, and the non-tensor entries by the documented key rules. And
// distribute_tensors into DTensors whose local tensor is on the meta device (B.6.10, C.4.11).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

#include "dist_fixtures.h"

namespace stagekit::conformance {
namespace {

Tensor full_of(IntList shape, std::uint64_t seed, Device device) {
  return Tensor::random(std::move(shape), DType::float32, seed, device);
}

// The local dict every rank starts from: a DTensor placeholder (zeros, [Shard(0)]), a plain tensor
// placeholder, a non-tensor entry, and a key rank 0's dict does not have.
Value local_placeholders(int r, int ws, Device device) {
  const auto dt = DTensor::distribute(Tensor::zeros({2 * ws + 1, 5}, DType::float32, device), world_mesh(ws, device),
                                      {Placement::shard(0)}, r);
  return Value::dict({{"dt", Value(dt)},
                      {"w", Value(Tensor::zeros({4, 3}, DType::float32, device))},
                      {"lr", Value(0.0)},
                      {"step", Value(Tensor::scalar(0.0, DType::float32))},
                      {"local_only", Value(7)}});
}

Value full_dict(int ws, Device device) {
  return Value::dict({{"dt", Value(full_of({2 * ws + 1, 5}, 31, device))},
                      {"w", Value(full_of({4, 3}, 32, device))},
                      {"lr", Value(0.25)},
                      {"step", Value(Tensor::scalar(12.0, DType::float32, device))},
                      {"name", Value("adam")},
                      {"unknown_tensor", Value(full_of({2, 2}, 33, device))}});
}

// A non-tensor entry with a list reached twice and a tensor with an attribute inside.
Value shared_node_entry(Device device) {
  const Value twice = Value::list({Value(std::int64_t{1}), Value(std::string("two"))});
  Tensor t = full_of({3}, 35, device);
  t.set_attr("note", Value(std::string("kept")));
  return Value::dict({{"first", twice}, {"again", twice}, {"t", Value(t)}});
}

// On every rank, the entry shared_node_entry() made on rank 0: the list reached twice is one node,
// and the tensor inside keeps its attribute and values.
void check_shared_node_entry(CaseContext& ctx, int r, const Value& meta) {
  ctx.require(meta.kind() == Value::Kind::dict && meta.as_dict().contains(std::string("first")) &&
                  meta.as_dict().contains(std::string("again")) && meta.as_dict().contains(std::string("t")),
              at_rank(r, "meta"), "non-tensor entries", "the entry with a list reached twice did not arrive whole");
  ctx.check(meta["first"].identity() != nullptr && meta["first"].identity() == meta["again"].identity(),
            at_rank(r, "meta.again"), "aliasing", "a list reached twice on rank 0 arrived as two lists");
  const Value t = meta["t"];
  ctx.require(t.is_tensor(), at_rank(r, "meta.t"), "kind", "not a tensor");
  check_equal(ctx, r, "meta.t", t.as_tensor(), full_of({3}, 35, Device::cpu()));
  ctx.check(t.as_tensor().has_attr("note") && t.as_tensor().attr("note").kind() == Value::Kind::string &&
                t.as_tensor().attr("note").as_string() == "kept",
            at_rank(r, "meta.t"), "attributes", "a tensor inside a non-tensor entry lost its attribute 'note'");
}

void check_distributed(CaseContext& ctx, int r, int ws, const Value& local, const std::shared_ptr<DTensor>& before,
                       Device device) {
  const Value dt = local["dt"];
  ctx.require(dt.kind() == Value::Kind::dtensor, at_rank(r, "dt"), "kind", "not a DTensor any more");
  const auto& d = *dt.as_dtensor_node();
  ctx.check(d.spec() == before->spec(), at_rank(r, "dt"), "spec", "mesh, placements or global shape changed");
  const Tensor full = full_of({2 * ws + 1, 5}, 31, Device::cpu());
  const LocalShard block = d.local_shard();
  check_equal(ctx, r, "dt._local_tensor", d.local(),
              full.narrow(0, std::min(block.offset[0], full.sizes()[0]), block.shape[0]));
  check_equal(ctx, r, "w", local["w"].as_tensor(), full_of({4, 3}, 32, Device::cpu()));
  ctx.check(local["w"].as_tensor().device() == device, at_rank(r, "w"), "device",
            fmt::format("on {}, expected {}", local["w"].as_tensor().device().str(), device.str()));
  const Tensor step = local["step"].as_tensor();
  check_equal(ctx, r, "step", step, Tensor::scalar(12.0, DType::float32));
  ctx.check(step.device().is_cpu(), at_rank(r, "step"), "device", "a 0-dim tensor must arrive on the CPU");
  ctx.check(local["lr"].as_double() == 0.25, at_rank(r, "lr"), "value", "lr was not assigned");
  ctx.check(!local.as_dict().contains(DictKey(std::string("unknown_tensor"))), at_rank(r, "unknown_tensor"), "keys",
            "a tensor for a key the rank does not hold must not be added");
}

void distribute_state_dict(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    Value local = local_placeholders(r, ws, device);
    const auto before = local["dt"].as_dtensor_node();
    const Value full = full_dict(ws, device);
    ctx.utilities().distribute_state_dict(full, local, device);
    check_distributed(ctx, r, ws, local, before, device);
    // Copies: a tensor and a 0-dim tensor never alias the full dict's, even on the same device.
    for (const char* key : {"w", "step"}) {
      const Value got = local[key];
      ctx.check(got.is_tensor() && !got.as_tensor().storage().is_alias_of(full[key].as_tensor().storage()),
                at_rank(r, key), "copy", "the local dict holds the full dict's own tensor (a copy is due)");
    }
    ctx.check(local["name"].kind() == Value::Kind::string && local["name"].as_string() == "adam", at_rank(r, "name"),
              "keys", "a non-tensor entry must be added even where the key is absent locally");
    ctx.check(local["local_only"].as_int() == 7, at_rank(r, "local_only"), "keys", "a local-only entry was changed");
  });
}

void broadcast_state_dict(CaseContext& ctx, Source src, int ws, bool strict) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    Value local = local_placeholders(r, ws, device);
    const auto before = local["dt"].as_dtensor_node();
    Value full = Value::dict({});  // only rank 0 holds the full dict
    const Tensor base = full_of({4, 6}, 34, device);
    if (r == 0) {
      full = full_dict(ws, device);
      full.as_dict().set("base", Value(base));
      full.as_dict().set("view", Value(base.narrow(1, 2, 3)));  // strides [6, 1], storage offset 2
      full.as_dict().set("meta", shared_node_entry(device));
    }
    const Value placeholders = Value::dict({{"base", Value(Tensor::zeros({4, 6}, DType::float32, device))},
                                            {"view", Value(Tensor::zeros({4, 3}, DType::float32, device))},
                                            {"w", local["w"]}});
    local.as_dict().set("base", placeholders["base"]);
    local.as_dict().set("view", placeholders["view"]);
    local.as_dict().set("meta", Value());
    ctx.utilities().broadcast_state_dict(full, local, comm, strict, false, device);
    check_distributed(ctx, r, ws, local, before, device);
    // Rank 0's host results share its full dict's storages (nothing is copied there); no rank's result
    // writes into the placeholders the caller holds.
    for (const char* key : {"w", "base", "view"}) {
      const Value got = local[key];
      if (!got.is_tensor()) continue;
      const Storage& storage = got.as_tensor().storage();
      if (r == 0 && got.as_tensor().device().is_cpu() && full[key].as_tensor().device().is_cpu()) {
        ctx.check(storage.is_alias_of(full[key].as_tensor().storage()), at_rank(r, key), "no copy on rank 0",
                  "rank 0's result does not share the storage of its full dict's tensor (it copies nothing there)");
      }
      ctx.check(!storage.is_alias_of(placeholders[key].as_tensor().storage()), at_rank(r, key), "new tensors",
                "the result writes into the local placeholder's storage instead of holding the broadcast tensor");
    }
    check_shared_node_entry(ctx, r, local["meta"]);
    // Entries that are views of one storage on rank 0 are views of one storage on every rank, with
    // rank 0's strides and offset (stagekit's choice: upstream's receivers get a tensor per key).
    const Value got_base = local["base"];
    const Value got_view = local["view"];
    ctx.require(got_base.is_tensor() && got_view.is_tensor(), at_rank(r, "view"), "kind", "base or view is no tensor");
    check_equal(ctx, r, "base", got_base.as_tensor(), base.to(Device::cpu()));
    check_equal(ctx, r, "view", got_view.as_tensor(), base.to(Device::cpu()).narrow(1, 2, 3));
    const Tensor& v = got_view.as_tensor();
    ctx.check(v.storage().is_alias_of(got_base.as_tensor().storage()) && v.storage_offset() == 2 &&
                  std::ranges::equal(v.strides(), IntList{6, 1}),
              at_rank(r, "view"), "storage sharing",
              fmt::format("a view of base's storage on rank 0 arrived {} base's storage, at offset {} with strides "
                          "[{}] (expected base's storage, offset 2, strides [6, 1])",
                          v.storage().is_alias_of(got_base.as_tensor().storage()) ? "on" : "off", v.storage_offset(),
                          fmt::join(v.strides(), ", ")));
    ctx.check(!local.as_dict().contains(DictKey(std::string("name"))), at_rank(r, "name"), "keys",
              "a non-tensor entry must only be assigned where the key exists locally");
    ctx.check(local.as_dict().contains(DictKey(std::string("local_only"))) != strict, at_rank(r, "local_only"),
              "strict", strict ? "strict must remove keys rank 0 does not have" : "without strict, local keys stay");
  });
}

// Spec B.6.11, C.4.10: with cpu_offload every tensor arrives on the CPU, a DTensor's block included,
// whatever `device` says; a 0-dim tensor arrives as a plain CPU tensor even where the local value is
// a (0-dim, replicated) DTensor, as upstream; and a tensor for a key the rank does not hold is
// skipped (stagekit's choice: upstream moves the missing local value to the CPU and fails).
void broadcast_cpu_offload(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    Value local = local_placeholders(r, ws, device);
    const auto before = local["dt"].as_dtensor_node();
    local.as_dict().set("step_dt", Value(DTensor::distribute(Tensor::scalar(0.0, DType::float32, device),
                                                             world_mesh(ws, device), {Placement::replicate()}, r)));
    Value full = Value::dict({});
    if (r == 0) {
      full = full_dict(ws, device);
      full.as_dict().set("step_dt", Value(Tensor::scalar(3.0, DType::float32, device)));
    }
    try {
      ctx.utilities().broadcast_state_dict(full, local, comm, false, true, device);
    } catch (const std::exception& e) {
      ctx.require(false, at_rank(r, "<root>"), "broadcast_state_dict(cpu_offload)",
                  fmt::format("raised (a key rank 0 has and this rank lacks must be skipped): {}", e.what()));
    }
    check_distributed(ctx, r, ws, local, before, Device::cpu());
    const Value dt = local["dt"];
    if (dt.kind() == Value::Kind::dtensor) {
      ctx.check(dt.as_dtensor_node()->local().device().is_cpu(), at_rank(r, "dt._local_tensor"), "cpu_offload",
                fmt::format("the block is on {}, expected the CPU", dt.as_dtensor_node()->local().device().str()));
    }
    const Value step_dt = local["step_dt"];
    ctx.check(step_dt.is_tensor() && step_dt.as_tensor().device().is_cpu() && step_dt.as_tensor().dim() == 0 &&
                  all_equal(step_dt.as_tensor(), 3.0),
              at_rank(r, "step_dt"), "0-dim tensors",
              fmt::format("expected a plain 0-dim CPU tensor 3.0 in place of the local 0-dim DTensor (as upstream), "
                          "got a {}",
                          value_kind_name(step_dt.kind())));
  });
}

// Spec B.6.11 ("rank checks use the global rank while the broadcast source is rank 0 of pg"): over a
// sub-communicator, the source is that communicator's rank 0, whatever its rank in the world. Two
// groups, {0, 1} and {2, 3}, each broadcast their own full dict from their first rank.
void broadcast_subgroup(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const Device device = source_device(src);
    const auto group = world.split(r / 2, r);
    const std::uint64_t seed = 700 + static_cast<std::uint64_t>(r / 2);
    Value local = Value::dict({{"w", Value(Tensor::zeros({4, 3}, DType::float32, device))}, {"group", Value(-1)}});
    const Value full = group->rank() == 0
                           ? Value::dict({{"w", Value(full_of({4, 3}, seed, device))}, {"group", Value(r / 2)}})
                           : Value::dict({});
    ctx.utilities().broadcast_state_dict(full, local, *group, false, false, device);
    check_equal(ctx, r, "w", local["w"].as_tensor(), full_of({4, 3}, seed, Device::cpu()));
    ctx.check(local["group"].kind() == Value::Kind::integer && local["group"].as_int() == r / 2, at_rank(r, "group"),
              "source", fmt::format("expected the dict of group {}'s first rank (world rank {})", r / 2, r / 2 * 2));
  });
}

// Spec B.6.11: rank 0 cannot pack a full dict holding an opaque leaf: it raises naming the leaf's
// path, and every other rank raises a CommunicationError with the same reason (none returns).
void broadcast_unpackable(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    Value local = Value::dict({{"w", Value(Tensor::zeros({2, 3}, DType::float32, device))}});
    const Value full = r == 0 ? Value::dict({{"w", Value(full_of({2, 3}, 35, device))},
                                             {"io", Value::dict({{"lock", Value::opaque("threading.Lock")}})}})
                              : Value::dict({});
    try {
      ctx.utilities().broadcast_state_dict(full, local, comm, false, false, device);
      ctx.check(false, at_rank(r, "io.lock"), "unpackable",
                "broadcast_state_dict returned although rank 0's full dict holds an opaque leaf");
    } catch (const CommunicationError& e) {
      ctx.check(r != 0, at_rank(r, "io.lock"), "unpackable",
                fmt::format("rank 0 raised a communication error instead of its packing error: {}", e.what()));
      ctx.check(std::string(e.what()).find("io.lock") != std::string::npos, at_rank(r, "io.lock"), "reason",
                fmt::format("the error does not give rank 0's reason (naming io.lock): {}", e.what()));
    } catch (const Error& e) {
      ctx.check(r == 0, at_rank(r, "io.lock"), "unpackable",
                fmt::format("a rank other than 0 raised something else than a communication error: {}", e.what()));
      ctx.check(std::string(e.what()).find("io.lock") != std::string::npos, at_rank(r, "io.lock"), "reason",
                fmt::format("the error does not name io.lock: {}", e.what()));
    }
  });
}

// A DTensor placeholder on the meta device (sizes, no data), as a model initialised on meta has,
// next to one with real memory: the meta one is replaced by a new DTensor with the same spec whose
// local tensor is a copy of the block on the full tensor's device; the real one is filled in place.
void distribute_tensors_meta(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const IntList shape{2 * ws + 1, 3};  // uneven rows: the blocks differ in size
    const Tensor full = full_of(shape, 41, device);
    const auto mesh = world_mesh(ws, device);
    const auto real = DTensor::distribute(Tensor::zeros(shape, DType::float32, device), mesh, {Placement::shard(0)}, r);
    const auto shaped = DTensor::distribute(Tensor::zeros(shape, DType::float32), mesh, {Placement::shard(0)}, r);
    const IntList local_shape(shaped->local().sizes().begin(), shaped->local().sizes().end());
    const auto meta = shaped->with_local(Tensor::empty(local_shape, DType::float32, Device::meta()));
    // Column-sharded (Shard(1), uneven columns): each rank's block is its columns, not the first rank's.
    const IntList wide{3, 2 * ws + 1};
    const Tensor full_wide = full_of(wide, 42, device);
    const auto columns =
        DTensor::distribute(Tensor::zeros(wide, DType::float32, device), mesh, {Placement::shard(1)}, r);
    Value local = Value::dict({{"meta", Value::list({Value(meta), Value(full)})},
                               {"real", Value::list({Value(real), Value(full)})},
                               {"columns", Value::list({Value(columns), Value(full_wide)})}});
    ctx.utilities().distribute_tensors(local, {"meta", "real", "columns"});

    const Value got = local["meta"];
    ctx.require(got.kind() == Value::Kind::dtensor, at_rank(r, "meta"), "kind", "not a DTensor after distribution");
    const auto& d = got.as_dtensor_node();
    ctx.check(d != meta, at_rank(r, "meta"), "identity",
              "the DTensor on the meta device was kept: it holds no data, a new DTensor must replace it");
    ctx.check(d->spec() == meta->spec(), at_rank(r, "meta"), "spec",
              "mesh, placements, global shape or strides changed");
    ctx.require(d->local().device() == device, at_rank(r, "meta._local_tensor"), "device",
                fmt::format("on {}, expected the full tensor's device {}", d->local().device().str(), device.str()));
    const LocalShard block = d->local_shard();
    const Tensor expected = full.narrow(0, std::min(block.offset[0], shape[0]), block.shape[0]);
    check_equal(ctx, r, "meta._local_tensor", d->local(), expected);
    ctx.check(d->local().is_contiguous(), at_rank(r, "meta._local_tensor"), "layout",
              "the block's copy is not contiguous");
    ctx.check(!d->local().storage().is_alias_of(full.storage()), at_rank(r, "meta._local_tensor"), "aliasing",
              "the block is a view of the full tensor, not a copy of it");
    ctx.check(meta->local().device().is_meta(), at_rank(r, "meta"), "source", "the caller's meta DTensor was changed");

    ctx.check(local["real"].kind() == Value::Kind::dtensor && local["real"].as_dtensor_node() == real,
              at_rank(r, "real"), "identity", "a DTensor with memory must be updated in place and kept");
    check_equal(ctx, r, "real._local_tensor", real->local(),
                full.narrow(0, std::min(real->local_shard().offset[0], shape[0]), real->local_shard().shape[0]));
    ctx.require(local["columns"].kind() == Value::Kind::dtensor, at_rank(r, "columns"), "kind",
                "not a DTensor after distribution");
    const LocalShard cols = local["columns"].as_dtensor_node()->local_shard();
    check_equal(ctx, r, "columns._local_tensor", local["columns"].as_dtensor_node()->local(),
                full_wide.narrow(1, std::min(cols.offset[1], wide[1]), cols.shape[1]));
  });
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dist_distribute) {
  add_world_cases(registry, "utils", "distribute_tensors_meta",
                  "distribute_tensors into a DTensor whose local tensor is on the meta device: a new DTensor with the "
                  "same spec holds a copy of the block on the full tensor's device; a DTensor with memory is "
                  "filled in place and kept; a column-sharded (Shard(1)) DTensor gets this rank's columns",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, distribute_tensors_meta,
                  utilities_requirements());
  add_world_cases(registry, "utils", "distribute_state_dict",
                  "distribute_state_dict: each rank's DTensor gets its block (uneven rows), tensors a copy of the full "
                  "tensor, 0-dim tensors a CPU copy, non-tensors are added, unknown tensors are not",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, distribute_state_dict,
                  utilities_requirements());
  for (bool strict : {false, true}) {
    add_world_cases(
        registry, "utils", strict ? CaseName("broadcast_state_dict", {"strict"}) : CaseName("broadcast_state_dict"),
        strict ? "broadcast_state_dict(strict): as without strict, and local keys rank 0 lacks are removed"
               : "broadcast_state_dict from rank 0: blocks, full tensors and 0-dim CPU tensors arrive on every "
                 "rank; non-tensors only where the key exists locally (a node reached twice stays one node, a tensor "
                 "inside keeps its attributes); views of one storage stay views of one storage, with rank 0's "
                 "strides and offset; rank 0 copies nothing, the other ranks share nothing with the caller",
        "strict", Profile::strict, kBothSources, kWorlds2And4,
        [strict](CaseContext& ctx, Source s, int ws) { broadcast_state_dict(ctx, s, ws, strict); },
        utilities_requirements());
  }
  add_world_cases(registry, "utils", CaseName("broadcast_state_dict", {"cpu_offload"}),
                  "broadcast_state_dict(cpu_offload): every tensor arrives on the CPU (a DTensor's block too), a 0-dim "
                  "tensor as a plain CPU tensor where the rank holds a 0-dim DTensor (as upstream), and a tensor for "
                  "a key the rank lacks is skipped (stagekit's choice: upstream fails there)",
                  "strict (spec B.6.11, C.4.10)", Profile::strict, kBothSources, kWorlds2And4, broadcast_cpu_offload,
                  utilities_requirements());
  const std::array<int, 1> two = {2};
  add_world_cases(registry, "utils", CaseName("broadcast_state_dict", {"unpackable"}),
                  "broadcast_state_dict of a full dict holding an opaque leaf: rank 0 raises naming its path, every "
                  "other rank a CommunicationError with the same reason",
                  "strict (spec B.6.11)", Profile::strict, kBothSources, two, broadcast_unpackable,
                  utilities_requirements());
  const std::array<int, 1> four = {4};
  add_world_cases(registry, "utils", CaseName("broadcast_state_dict", {"subgroup"}),
                  "broadcast_state_dict over a sub-communicator: each group of two gets its own first rank's dict "
                  "(the source is rank 0 of the communicator, not of the world)",
                  "strict (spec B.6.11)", Profile::strict, kBothSources, four, broadcast_subgroup,
                  utilities_requirements());
}

}  // namespace stagekit::conformance
