// The strict contract of gather_state_dict and the rank filter (spec B.6.2-B.6.4, C.4.5, C.4.6,
// C.4.9): uneven and empty shards, 2-D meshes mixing Shard and Replicate, Partial(sum), ShardedTensors
// with any shard layout, a gather with `device`, ranks_only on nested containers, type checks, and a
// rank that never arrives (a timeout error on the others, not a hang).
#include <chrono>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dist_fixtures.h"
#include "stagekit/core/error.h"

namespace stagekit::conformance {
namespace {

// The global tensor every rank can rebuild: values 0..n-1 (exact in float32), of `shape`.
Tensor global_tensor(const IntList& shape, Device device) {
  std::int64_t n = 1;
  for (std::int64_t s : shape) n *= s;
  return Tensor::arange(n, DType::float32, device).view(shape);
}

void gather_layout(CaseContext& ctx, Source src, int ws, const IntList& mesh_shape, std::vector<Placement> placements,
                   IntList shape) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    std::vector<int> ranks(static_cast<std::size_t>(ws));
    for (int i = 0; i < ws; ++i) ranks[static_cast<std::size_t>(i)] = i;
    const DeviceMesh mesh(device.type, mesh_shape, ranks);
    const Tensor full = global_tensor(shape, device);
    // Random float64 and int64 values (the same on every rank): float32 cannot hold them exactly.
    const Tensor full64 = Tensor::random(shape, DType::float64, 81, device);
    const Tensor full_i64 = Tensor::random(shape, DType::int64, 82, device);
    const Value sd = Value::dict({{"w", Value(DTensor::distribute(full, mesh, placements, r))},
                                  {"w64", Value(DTensor::distribute(full64, mesh, placements, r))},
                                  {"i64", Value(DTensor::distribute(full_i64, mesh, placements, r))}});
    const Value out = ctx.utilities().gather_state_dict(sd, comm, {});
    for (const auto& [key, expected] :
         {std::pair<const char*, Tensor>{"w", full}, {"w64", full64}, {"i64", full_i64}}) {
      ctx.require(out[key].is_tensor(), at_rank(r, key), "kind", "the gathered value is not a plain tensor");
      check_equal(ctx, r, key, out[key].as_tensor(), expected);
    }
  });
}

void gather_partial(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    // Rank r holds (r + 1) * base; the sum is base * ws * (ws + 1) / 2.
    const Tensor base = Tensor::arange(12, DType::float32).view({3, 4});
    Tensor local = Tensor::empty({3, 4}, DType::float32);
    for (std::int64_t i = 0; i < 12; ++i) {
      local.view({12}).narrow(0, i, 1).fill_(static_cast<double>(i) * (r + 1));
    }
    const auto dt = std::make_shared<DTensor>(
        local.to(device), DTensorSpec{world_mesh(ws, device), {Placement::partial()}, {3, 4}, {4, 1}}, r);
    Tensor expected = Tensor::empty({3, 4}, DType::float32);
    for (std::int64_t i = 0; i < 12; ++i) {
      expected.view({12}).narrow(0, i, 1).fill_(static_cast<double>(i) * ws * (ws + 1) / 2);
    }
    const Value out = ctx.utilities().gather_state_dict(Value::dict({{"w", Value(dt)}}), comm, {});
    check_equal(ctx, r, "w", out["w"].as_tensor(), expected);
    check_equal(ctx, r, "w(source)", dt->local(), local);  // the reduction must not write into the source
  });
}

void gather_sharded_tensor(CaseContext& ctx, Source src, int ws) {
  // Uneven rows (torch.chunk of 2*ws+1 rows), and rank 0 also holds a second shard: the last column
  // block of row 0 is split off — every local shard must be assembled at its offsets.
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const IntList shape{2 * ws + 1, 6};
    const Tensor full = global_tensor(shape, device);
    ShardedTensorMetadata meta;
    meta.size = shape;
    meta.dtype = DType::float32;
    std::vector<LocalTensorShard> mine;
    for (int i = 0; i < ws; ++i) {
      const auto [rows, offset] = chunk_of(shape[0], ws, i);
      if (rows == 0) continue;
      std::vector<ShardMetadata> pieces;
      if (i == 0) {
        pieces.push_back({{offset, 0}, {rows, 4}, i, device});
        pieces.push_back({{offset, 4}, {rows, 2}, i, device});
      } else {
        pieces.push_back({{offset, 0}, {rows, 6}, i, device});
      }
      for (const ShardMetadata& m : pieces) {
        meta.shards.push_back(m);
        if (i == r)
          mine.push_back({full.narrow(0, m.offsets[0], m.sizes[0]).narrow(1, m.offsets[1], m.sizes[1]).clone(), m});
      }
    }
    const auto st = std::make_shared<ShardedTensor>(std::move(mine), meta, r);
    const Value out = ctx.utilities().gather_state_dict(Value::dict({{"st", Value(st)}}), comm, {});
    check_equal(ctx, r, "st", out["st"].as_tensor(), full);
  });
}

// B.6.2-B.6.4 with pg: gathering over a sub-communicator. A world of 4 is split into {0, 1} and
// {2, 3}; each group gathers its own row-sharded ShardedTensor (placements in the group's rank
// space), and ranks_only=(1) names the group's rank 1 (world ranks 1 and 3), as upstream reads it
// ("this process's rank in pg").
void gather_subgroup(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int color = world.rank() / 2;
    const auto group = world.split(color, world.rank());
    const int r = group->rank();
    const int gs = group->size();
    const Device device = source_device(src);
    const IntList shape{2 * gs + 1, 3};
    const Tensor full = Tensor::random(shape, DType::float32, 700 + static_cast<std::uint64_t>(color), device);
    ShardedTensorMetadata meta;
    meta.size = shape;
    meta.dtype = DType::float32;
    std::vector<LocalTensorShard> mine;
    for (int i = 0; i < gs; ++i) {
      const auto [rows, offset] = chunk_of(shape[0], gs, i);
      const ShardMetadata m{{offset, 0}, {rows, shape[1]}, i, device};
      meta.shards.push_back(m);
      if (i == r) mine.push_back({full.narrow(0, offset, rows).clone(), m});
    }
    const Value sd = Value::dict({{"st", Value(std::make_shared<ShardedTensor>(std::move(mine), meta, r))}});
    const Value all = ctx.utilities().gather_state_dict(sd, *group, {});
    check_equal(ctx, world.rank(), "st", all["st"].as_tensor(), full);
    const Value listed = ctx.utilities().gather_state_dict(sd, *group, {false, {1}, true, std::nullopt});
    if (r == 1) {
      if (listed.kind() == Value::Kind::dict && listed.as_dict().contains(std::string("st"))) {
        check_equal(ctx, world.rank(), "st", listed["st"].as_tensor(), full);
      } else {
        ctx.check(false, at_rank(world.rank(), "st"), "ranks_only",
                  "group rank 1 is listed in ranks_only but did not get the gathered tensor");
      }
    } else {
      ctx.check(listed.kind() == Value::Kind::dict && listed.as_dict().size() == 0, at_rank(world.rank(), "<root>"),
                "ranks_only", "group rank 0 is not listed in ranks_only (ranks are read in the group) but got values");
    }
  });
}

// A row-sharded ShardedTensor of shape [2 * (ws - 1), 3] on `device`: ranks 0..ws-2 hold two rows
// each, the last rank holds none.
std::shared_ptr<ShardedTensor> rows_but_the_last_rank(const Tensor& full, int ws, int r, Device device) {
  ShardedTensorMetadata meta;
  meta.size = IntList(full.sizes().begin(), full.sizes().end());
  meta.dtype = full.dtype();
  std::vector<LocalTensorShard> mine;
  for (int i = 0; i + 1 < ws; ++i) {
    const ShardMetadata m{{2 * i, 0}, {2, meta.size[1]}, i, device};
    meta.shards.push_back(m);
    if (i == r) mine.push_back({full.narrow(0, 2 * i, 2).to(device), m});
  }
  return std::make_shared<ShardedTensor>(std::move(mine), meta, r);
}

bool check_on(CaseContext& ctx, int r, std::string_view path, const Tensor& t, Device expected, std::string_view why) {
  return ctx.check(t.defined() && t.device() == expected, at_rank(r, path), "device",
                   fmt::format("the gathered tensor is on {}, expected {} ({})", t.defined() ? t.device().str() : "-",
                               expected.str(), why));
}

// B.6.3-B.6.4 with `device`: a ShardedTensor's full tensor goes through the given device and ends
// on the device of the rank's first local shard (the CPU on a rank without one); a DTensor ignores
// `device`; the meta device, which holds no data, is refused naming the path. CPU sources are
// gathered with device=cpu, their DTensors with device=cuda:0, which they ignore (no CUDA needed);
// CUDA sources are gathered with device=cpu, and a CPU ShardedTensor with device=cuda:0.
void gather_on_device(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Device other = device.is_cpu() ? Device::cuda(0) : Device::cpu();
    auto& utils = ctx.utilities();
    const Tensor full = Tensor::random({2 * (ws - 1), 3}, DType::float32, 900);
    const Device shard_device = r + 1 < ws ? device : Device::cpu();
    const Value sharded = Value::dict({{"st", Value(rows_but_the_last_rank(full, ws, r, device))}});

    UtilityGatherOptions on_cpu;
    on_cpu.device = Device::cpu();
    const Value a = utils.gather_state_dict(sharded, comm, on_cpu);
    if (check_equal(ctx, r, "st", a["st"].as_tensor(), full)) {
      check_on(ctx, r, "st", a["st"].as_tensor(), shard_device,
               r + 1 < ws ? "the first local shard's device" : "a rank holding no shard gets the CPU");
    }

    const Tensor global = Tensor::random({ws, 4}, DType::float32, 901);
    const auto dt = DTensor::distribute(global.to(device), world_mesh(ws, device), {Placement::shard(0)}, r);
    UtilityGatherOptions elsewhere;
    elsewhere.device = other;
    const Value b = utils.gather_state_dict(Value::dict({{"dt", Value(dt)}}), comm, elsewhere);
    if (check_equal(ctx, r, "dt", b["dt"].as_tensor(), global)) {
      check_on(ctx, r, "dt", b["dt"].as_tensor(), device, fmt::format("a DTensor ignores device={}", other.str()));
    }

    if (device.is_cuda()) {  // a CPU ShardedTensor gathered on the GPU comes back to the CPU
      const Value host = Value::dict({{"st", Value(rows_but_the_last_rank(full, ws, r, Device::cpu()))}});
      const Value c = utils.gather_state_dict(host, comm, elsewhere);
      if (check_equal(ctx, r, "st(cpu shards)", c["st"].as_tensor(), full)) {
        check_on(ctx, r, "st(cpu shards)", c["st"].as_tensor(), Device::cpu(),
                 "the first local shard's device, not device=cuda:0");
      }
    }

    UtilityGatherOptions on_meta;
    on_meta.device = Device::meta();
    try {
      const Value d = utils.gather_state_dict(sharded, comm, on_meta);
      ctx.check(false, at_rank(r, "st"), "meta device",
                fmt::format("gathering on the meta device, which holds no data, returned a {} instead of an error",
                            value_kind_name(d["st"].kind())));
    } catch (const Error& e) {
      ctx.check(e.path() == "st", at_rank(r, "st"), "error path",
                fmt::format("the error names '{}': {}", e.path(), e.what()));
    }
  });
}

// B.6.4: plain tensors pass through the gather unchanged, the same objects (no copy, whatever their
// size); with cpu_offload a plain tensor already on the CPU is still the same object, one on a GPU
// comes back as a CPU copy.
void gather_keeps_plain_tensors(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Tensor plain = Tensor::random({64, 16}, DType::float32, 950, device);
    const Tensor view = plain.narrow(0, 8, 8);
    const Tensor host = Tensor::random({8}, DType::int64, 951);
    const auto dt = DTensor::distribute(Tensor::random({ws, 3}, DType::float32, 952, device), world_mesh(ws, device),
                                        {Placement::shard(0)}, r);
    const Value sd =
        Value::dict({{"plain", Value(plain)}, {"view", Value(view)}, {"host", Value(host)}, {"dt", Value(dt)}});
    for (const bool offload : {false, true}) {
      UtilityGatherOptions options;
      options.cpu_offload = offload;
      const Value out = ctx.utilities().gather_state_dict(sd, comm, options);
      const std::string how = offload ? "with cpu_offload" : "without cpu_offload";
      for (const auto& [key, source] :
           std::initializer_list<std::pair<const char*, Tensor>>{{"plain", plain}, {"view", view}, {"host", host}}) {
        if (!ctx.check(out[key].is_tensor(), at_rank(r, key), "kind", "the gathered value is not a tensor")) continue;
        const Tensor got = out[key].as_tensor();  // a handle: out[key] is a temporary
        if (offload && !source.device().is_cpu()) {
          ctx.check(got.device().is_cpu(), at_rank(r, key), "cpu_offload",
                    fmt::format("{}: a {} tensor did not come back on the CPU", how, source.device().str()));
          check_equal(ctx, r, key, got, source);
          continue;
        }
        ctx.check(got.is_same(source), at_rank(r, key), "passed through",
                  fmt::format("{}: the plain tensor came back as {} (a plain tensor passes through the gather as the "
                              "same object)",
                              how,
                              got.storage().is_alias_of(source.storage()) ? "another tensor object over its storage"
                                                                          : "a copy"));
      }
    }
  });
}

void ranks_only_nested(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const auto dt =
        DTensor::distribute(global_tensor({ws, 2}, device), world_mesh(ws, device), {Placement::shard(0)}, r);
    const Value nested = Value::dict({{"outer", Value::dict({{"inner", Value(dt)}, {"n", Value(1)}})},
                                      {"items", Value::list({Value(dt), Value(2)})},
                                      {"pair", Value::tuple({Value(dt), Value(4)})},
                                      {"point", Value::named_tuple("Point", {{"x", Value(dt)}, {"y", Value(5)}})}});
    const Value as_list = Value::list({Value(dt), Value::dict({{"x", Value(3)}})});
    auto& utils = ctx.utilities();
    const Value a = utils.gather_state_dict(nested, comm, {false, {1}, true, std::nullopt});
    const Value b = utils.gather_state_dict(as_list, comm, {false, {1}, true, std::nullopt});
    if (r == 1) {
      check_equal(ctx, r, "outer.inner", a["outer"]["inner"].as_tensor(), global_tensor({ws, 2}, device));
      check_equal(ctx, r, "items.0", a["items"].at(0).as_tensor(), global_tensor({ws, 2}, device));
      ctx.check(a["outer"]["n"].as_int() == 1, at_rank(r, "outer.n"), "value", "not 1");
      ctx.check(a["items"].kind() == Value::Kind::list && a["items"].as_list().items.size() == 2 &&
                    a["items"].at(1).kind() == Value::Kind::integer && a["items"].at(1).as_int() == 2,
                at_rank(r, "items.1"), "value", "the list must keep its second item, 2");
      // Tuples stay tuples, namedtuples namedtuples (class and fields), the DTensors inside gathered.
      for (const auto& [key, type, second] :
           {std::tuple<const char*, const char*, std::int64_t>{"pair", "", 4}, {"point", "Point", 5}}) {
        const Value t = a[key];
        if (!ctx.check(t.kind() == Value::Kind::tuple && t.as_tuple().items().size() == 2, at_rank(r, key), "structure",
                       fmt::format("a {} of 2 items came back as a {}", *type != 0 ? "namedtuple" : "tuple",
                                   value_kind_name(t.kind())))) {
          continue;
        }
        ctx.check(t.as_tuple().type_name() == type, at_rank(r, key), "namedtuple",
                  fmt::format("the class is '{}', expected '{}'", t.as_tuple().type_name(), type));
        const Value first = t.as_tuple().items()[0];
        if (ctx.check(first.is_tensor(), at_rank(r, fmt::format("{}.0", key)), "kind", "not a plain tensor"))
          check_equal(ctx, r, fmt::format("{}.0", key), first.as_tensor(), global_tensor({ws, 2}, device));
        const Value last = t.as_tuple().items()[1];
        ctx.check(last.kind() == Value::Kind::integer && last.as_int() == second, at_rank(r, fmt::format("{}.1", key)),
                  "value", fmt::format("expected {}", second));
      }
      ctx.require(b.kind() == Value::Kind::list && b.as_list().items.size() == 2, at_rank(r, "<root>"), "structure",
                  "the listed rank must get the whole list");
      check_equal(ctx, r, "[0]", b.at(0).as_tensor(), global_tensor({ws, 2}, device));
      ctx.check(b.at(1).kind() == Value::Kind::dict && b.at(1)["x"].kind() == Value::Kind::integer &&
                    b.at(1)["x"].as_int() == 3,
                at_rank(r, "[1].x"), "value", "the list's dict must keep x = 3");
    } else {
      ctx.check(a.kind() == Value::Kind::dict && a.as_dict().size() == 0, at_rank(r, "<root>"), "ranks_only",
                "an unlisted rank must get {} for a dict");
      ctx.check(
          b.is_none(), at_rank(r, "<root>"), "ranks_only",
          fmt::format("an unlisted rank must get None for a top-level list, got a {}", value_kind_name(b.kind())));
    }
  });
}

void type_check(CaseContext& ctx, Source src, int) {
  auto& utils = ctx.utilities();
  const Tensor t = Tensor::arange(4, DType::float32, source_device(src));
  const Value sd =
      Value::dict({{"opt", Value::dict({{"state", Value::object("AdamState", {{"exp_avg", Value(t)}}, false)}})}});
  bool raised = false;
  try {
    (void)utils.offload_state_dict_to_cpu(sd, 0, {}, true);
  } catch (const InvalidArgument& e) {
    raised = true;
    ctx.check(e.path() == "opt.state", "opt.state", "error path",
              fmt::format("the error names '{}': {}", e.path(), e.what()));
  }
  ctx.check(raised, "opt.state", "type_check", "an object leaf was accepted with type_check=true");
  const Value copied = utils.offload_state_dict_to_cpu(sd, 0, {}, false);
  ctx.require(copied["opt"]["state"].kind() == Value::Kind::object, "opt.state", "type_check=false",
              "the object did not come back as an object");
  const Tensor inner = copied["opt"]["state"]["exp_avg"].as_tensor();
  check_equal(ctx, 0, "opt.state.exp_avg", inner, t);
  ctx.check(!inner.storage().is_alias_of(t.storage()), "opt.state.exp_avg", "deep copy",
            "type_check=false must deep-copy unknown leaves, tensors inside included");

  // Sets too (spec C.4.6): rejected naming the path with type_check=true, copied with false.
  const Value tags = Value::set({Value("warmup"), Value(3)});
  const Value with_set = Value::dict({{"meta", Value::dict({{"tags", tags}})}, {"w", Value(t)}});
  raised = false;
  try {
    (void)utils.offload_state_dict_to_cpu(with_set, 0, {}, true);
  } catch (const InvalidArgument& e) {
    raised = true;
    ctx.check(e.path() == "meta.tags", "meta.tags", "error path",
              fmt::format("the error names '{}': {}", e.path(), e.what()));
  }
  ctx.check(raised, "meta.tags", "type_check", "a set leaf was accepted with type_check=true");
  const Value set_copy = utils.offload_state_dict_to_cpu(with_set, 0, {}, false)["meta"]["tags"];
  ctx.check(set_copy.kind() == Value::Kind::set && set_copy.as_set().items().size() == 2 &&
                !set_copy.as_set().frozen() && set_copy.identity() != tags.identity(),
            "meta.tags", "type_check=false", "the set was not deep-copied into a set of the same items");

  // Opaque leaves (a lock, a file handle) too: rejected naming the path with type_check=true, shared
  // as they are with false.
  const Value lock = Value::opaque("threading.Lock");
  const Value with_opaque = Value::dict({{"io", Value::dict({{"lock", lock}})}, {"w", Value(t)}});
  raised = false;
  try {
    (void)utils.offload_state_dict_to_cpu(with_opaque, 0, {}, true);
  } catch (const InvalidArgument& e) {
    raised = true;
    ctx.check(e.path() == "io.lock", "io.lock", "error path",
              fmt::format("the error names '{}': {}", e.path(), e.what()));
  }
  ctx.check(raised, "io.lock", "type_check", "an opaque leaf was accepted with type_check=true");
  ctx.check(utils.offload_state_dict_to_cpu(with_opaque, 0, {}, false)["io"]["lock"].identity() == lock.identity(),
            "io.lock", "type_check=false", "the opaque leaf is not shared as it is");

  // gather_state_dict iterates the same way (spec B.6.4 over B.6.2): the object is rejected with
  // type_check=true, on every rank, and deep-copied with false.
  ctx.run_ranks(1, [&](dist::Communicator& comm) {
    bool gather_raised = false;
    try {
      (void)utils.gather_state_dict(sd, comm, {false, {}, true, std::nullopt});
    } catch (const InvalidArgument& e) {
      gather_raised = true;
      ctx.check(e.path() == "opt.state", "opt.state", "error path",
                fmt::format("gather_state_dict: the error names '{}': {}", e.path(), e.what()));
    }
    ctx.check(gather_raised, "opt.state", "type_check",
              "gather_state_dict accepted an object leaf with type_check=true");
    const Value gathered = utils.gather_state_dict(sd, comm, {false, {}, false, std::nullopt});
    ctx.require(gathered["opt"]["state"].kind() == Value::Kind::object, "opt.state", "type_check=false",
                "gather_state_dict: the object did not come back as an object");
    ctx.check(gathered["opt"]["state"].identity() != sd["opt"]["state"].identity(), "opt.state", "deep copy",
              "gather_state_dict with type_check=false must deep-copy an unknown leaf");
  });
}

// type_check in a gather over two ranks: every rank rejects an object or an opaque leaf naming its
// path with type_check=true (no rank leaves it to another), and with false deep-copies the object and
// shares the opaque leaf. No DTensor in the dicts: a rank that wrongly accepts returns at once.
void type_check_gather(CaseContext& ctx, Source src, int ws) {
  auto& utils = ctx.utilities();
  const Tensor t = Tensor::arange(4, DType::float32, source_device(src));
  const Value object = Value::object("AdamState", {{"exp_avg", Value(t)}}, false);
  const Value lock = Value::opaque("threading.Lock");
  const Value sd = Value::dict({{"opt", Value::dict({{"state", object}})}, {"w", Value(t)}});
  const Value with_opaque = Value::dict({{"io", Value::dict({{"lock", lock}})}, {"w", Value(t)}});
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    for (const auto& [input, path] : {std::pair<Value, std::string>{sd, "opt.state"}, {with_opaque, "io.lock"}}) {
      bool raised = false;
      try {
        (void)utils.gather_state_dict(input, comm, {false, {}, true, std::nullopt});
      } catch (const InvalidArgument& e) {
        raised = true;
        ctx.check(e.path() == path, at_rank(r, path), "error path",
                  fmt::format("gather_state_dict: the error names '{}': {}", e.path(), e.what()));
      }
      ctx.check(raised, at_rank(r, path), "type_check",
                "gather_state_dict accepted the leaf with type_check=true on this rank");
    }
    const Value gathered = utils.gather_state_dict(sd, comm, {false, {}, false, std::nullopt});
    ctx.check(gathered["opt"]["state"].kind() == Value::Kind::object &&
                  gathered["opt"]["state"].identity() != object.identity(),
              at_rank(r, "opt.state"), "type_check=false", "the object was not deep-copied into an object");
    ctx.check(utils.gather_state_dict(with_opaque, comm, {false, {}, false, std::nullopt})["io"]["lock"].identity() ==
                  lock.identity(),
              at_rank(r, "io.lock"), "type_check=false", "the opaque leaf is not shared as it is");
  });
}

void rank_never_arrives(CaseContext& ctx, Source src, int ws) {
  using namespace std::chrono_literals;
  const auto timeout = 2s;
  ctx.run_ranks(
      ws,
      [&](dist::Communicator& comm) {
        const int r = comm.rank();
        if (r == ws - 1) return;  // this rank never calls the gather
        const Device device = source_device(src);
        const auto dt =
            DTensor::distribute(global_tensor({ws, 2}, device), world_mesh(ws, device), {Placement::shard(0)}, r);
        const auto start = std::chrono::steady_clock::now();
        bool timed_out = false;
        try {
          (void)ctx.utilities().gather_state_dict(Value::dict({{"w", Value(dt)}}), comm, {});
        } catch (const TimeoutError&) {
          timed_out = true;
        } catch (const std::exception& e) {
          ctx.check(false, at_rank(r, "w"), "timeout", fmt::format("expected a timeout error, got: {}", e.what()));
          return;
        }
        const auto waited = std::chrono::steady_clock::now() - start;
        ctx.check(timed_out, at_rank(r, "w"), "timeout", "the gather returned although a rank never arrived");
        ctx.check(waited < give_up_limit(timeout), at_rank(r, "w"), "timeout",
                  fmt::format("gave up only after {} ms (timeout {} ms, allowed {} ms)",
                              std::chrono::duration_cast<std::chrono::milliseconds>(waited).count(),
                              std::chrono::milliseconds(timeout).count(), give_up_limit(timeout).count()));
      },
      timeout);
}

struct Layout {
  const char* name;
  IntList mesh;
  std::vector<Placement> placements;
  IntList shape;
  int world;
};

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dist_strict) {
  static constexpr std::array<int, 1> kWorld2 = {2};
  const Layout layouts[] = {
      {"uneven_rows", {4}, {Placement::shard(0)}, {10, 3}, 4},    // 3, 3, 3, 1 rows
      {"empty_shards", {4}, {Placement::shard(0)}, {2, 3}, 4},    // 1, 1, 0, 0 rows
      {"zero_rows", {2}, {Placement::shard(0)}, {0, 5}, 2},       // nothing anywhere
      {"uneven_columns", {4}, {Placement::shard(1)}, {3, 7}, 4},  // 2, 2, 2, 1 columns
      {"inner_dim", {2}, {Placement::shard(2)}, {2, 3, 4}, 2},    // 2, 2 of the last dimension
      {"replicate", {2}, {Placement::replicate()}, {3, 3}, 2},
      {"mesh2d_shard0_shard0", {2, 2}, {Placement::shard(0), Placement::shard(0)}, {7, 2}, 4},
      {"mesh2d_shard0_shard1", {2, 2}, {Placement::shard(0), Placement::shard(1)}, {5, 3}, 4},
      {"mesh2d_replicate_shard1", {2, 2}, {Placement::replicate(), Placement::shard(1)}, {4, 5}, 4},
      {"mesh2d_shard1_replicate", {2, 2}, {Placement::shard(1), Placement::replicate()}, {3, 3}, 4},
  };
  for (const Layout& l : layouts) {
    const std::array<int, 1> world = {l.world};
    std::vector<std::string> p;
    for (const Placement& x : l.placements) p.push_back(x.str());
    add_world_cases(
        registry, "utils", CaseName("gather", {l.name}),
        fmt::format("gather of a DTensor of shape [{}] over mesh [{}] with [{}] gives exactly the global "
                    "tensor (torch.chunk sharding), in float32, float64 and int64",
                    fmt::join(l.shape, ", "), fmt::join(l.mesh, ", "), fmt::join(p, ", ")),
        "strict", Profile::strict, kBothSources, world,
        [l](CaseContext& ctx, Source s, int ws) { gather_layout(ctx, s, ws, l.mesh, l.placements, l.shape); },
        utilities_requirements());
  }
  add_world_cases(registry, "utils", "gather_partial",
                  "gather of a Partial(sum) DTensor is the sum over ranks, and the "
                  "source local tensors are untouched",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, gather_partial, utilities_requirements());
  Requirements sharded = utilities_requirements();
  sharded.sharded_tensor = true;
  add_world_cases(registry, "utils", "gather_sharded_tensor",
                  "gather of a ShardedTensor with uneven row shards and two local shards on rank 0 assembles every "
                  "shard at its offsets",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, gather_sharded_tensor, sharded);
  Requirements sharded_subgroup = utilities_requirements();
  sharded_subgroup.sharded_tensor = true;
  add_world_cases(registry, "utils", "gather_subgroup",
                  "gather over a sub-communicator (a world of 4 split in two): each group assembles its own "
                  "ShardedTensor, and ranks_only names ranks of the group",
                  "strict (spec B.6.2-B.6.4, pg)", Profile::strict, kBothSources, kWorld4, gather_subgroup,
                  sharded_subgroup);
  Requirements sharded_on_device = utilities_requirements();
  sharded_on_device.sharded_tensor = true;
  add_world_cases(registry, "utils", "gather_on_device",
                  "gather with device: a ShardedTensor ends on its first local shard's device (CPU on a rank "
                  "holding none) whatever device it was gathered on, a DTensor ignores device, and the meta device "
                  "is refused naming the path",
                  "strict (spec B.6.3-B.6.4, device)", Profile::strict, kBothSources, kWorlds2And4, gather_on_device,
                  sharded_on_device);
  add_world_cases(registry, "utils", "gather_keeps_plain_tensors",
                  "gather passes plain tensors (views too) through as the same objects, and with cpu_offload keeps "
                  "CPU ones the same objects and brings GPU ones to the CPU",
                  "strict (spec B.6.4)", Profile::strict, kBothSources, kWorld2, gather_keeps_plain_tensors,
                  utilities_requirements());
  add_world_cases(registry, "utils", "ranks_only_nested",
                  "ranks_only=(1): the listed rank gets nested dicts, lists, tuples and namedtuples in full (every "
                  "value checked, tuples kept tuples); the others get {} for a dict "
                  "and None for a top-level list",
                  "strict", Profile::strict, kBothSources, kWorld4, ranks_only_nested, utilities_requirements());
  const std::array<int, 1> one = {1};
  add_world_cases(registry, "utils", "type_check",
                  "type_check=true rejects an object, a set or an opaque leaf naming its path, in offloading, and an "
                  "object in a gather; type_check=false deep-copies the object or set and shares the opaque leaf "
                  "(spec C.4.6)",
                  "strict", Profile::strict, kBothSources, one, type_check, utilities_requirements());
  add_world_cases(registry, "utils", CaseName("type_check", {"gather"}),
                  "gather_state_dict with type_check=true rejects an object or an opaque leaf naming its path on "
                  "every rank; with false it deep-copies the object and shares the opaque leaf",
                  "strict (spec C.4.6)", Profile::strict, kBothSources, kWorld2, type_check_gather,
                  utilities_requirements());
  add_world_cases(registry, "utils", "rank_never_arrives",
                  "a rank that never joins the gather makes the others fail with a timeout error within the timeout, "
                  "not hang",
                  "strict", Profile::strict, kBothSources, kWorlds2And4, rank_never_arrives, utilities_requirements());
}

}  // namespace stagekit::conformance
