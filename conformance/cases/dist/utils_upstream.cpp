// The cases of PyTorch's TestStateDictUtils (spec A.4) and TestDTensorStateDictStager.test_dtensor
// (A.2.1), each rank a thread of a thread world, CPU and CUDA sources.
#include <fmt/format.h>

#include "dist_fixtures.h"

namespace stagekit::conformance {
namespace {

// DTensor [Shard(0)] of rank r's seeded local block of `local_shape` (global: ws * rows).
std::shared_ptr<DTensor> sharded_rows(const IntList& local_shape, int rank, int ws, Device device,
                                      std::uint64_t salt = 0) {
  const Tensor local = rank_tensor(local_shape, rank, device, salt);
  IntList global = local_shape;
  global[0] *= ws;
  return std::make_shared<DTensor>(
      local, DTensorSpec{world_mesh(ws, device), {Placement::shard(0)}, global, Tensor::contiguous_strides(global)},
      rank);
}

// What a gather of sharded_rows must give: every rank's block, concatenated in rank order.
Tensor expected_rows(IntList local_shape, int ws, Device device, std::uint64_t salt = 0) {
  IntList global = local_shape;
  global[0] *= ws;
  Tensor full = Tensor::empty(global, DType::float32);
  for (int r = 0; r < ws; ++r) {
    full.narrow(0, r * local_shape[0], local_shape[0]).copy_(rank_tensor(local_shape, r, Device::cpu(), salt));
  }
  return device.is_cpu() ? full : full.to(device);
}

bool on_cpu(const Value& v) {
  if (v.is_tensor()) return v.as_tensor().device().is_cpu();
  if (v.kind() == Value::Kind::dtensor) return v.as_dtensor_node()->local().device().is_cpu();
  return false;
}

void stage_dtensor(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const auto dt = sharded_rows({3, 3}, r, ws, source_device(src));
    auto stager = ctx.make_stager(stager_config(PinShare{true, true}));
    const Value source = Value::dict({{"dtensor", Value(dt)}});
    const Value staged = stager->stage(source);
    const Value out = staged["dtensor"];
    ctx.require(out.kind() == Value::Kind::dtensor, at_rank(r, "dtensor"), "kind",
                fmt::format("staged as a {}", value_kind_name(out.kind())));
    const DTensor& s = *out.as_dtensor_node();
    ctx.check(s.local().device().is_cpu(), at_rank(r, "dtensor"), "device",
              "the staged local tensor is not on the CPU");
    check_equal(ctx, r, "dtensor._local_tensor", s.local(), dt->local());
    ctx.check(s.spec() == dt->spec(), at_rank(r, "dtensor"), "spec",
              fmt::format("staged spec {} differs from {}", s.spec().str(), dt->spec().str()));
    ctx.check(s.global_shape() == IntList{3 * ws, 3}, at_rank(r, "dtensor"), "global size",
              fmt::format("[{}, {}]", s.global_shape().at(0), s.global_shape().at(1)));
    ctx.check(!s.local().storage().is_alias_of(dt->local().storage()), at_rank(r, "dtensor"), "copy",
              "the staged local tensor shares the source's storage");
    check_staged_on_rank(ctx, r, source, staged, PinShare{true, true});  // pinned and shared, probed
  });
}

void gather_dtensor(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Value sd = Value::dict({{"dtensor", Value(sharded_rows({3, 3, 3}, r, ws, device))}});
    const Value gathered = ctx.utilities().gather_state_dict(sd, comm, {});
    const Value out = gathered["dtensor"];
    ctx.require(out.is_tensor(), at_rank(r, "dtensor"), "kind", "the gathered value is not a plain tensor");
    check_equal(ctx, r, "dtensor", out.as_tensor(), expected_rows({3, 3, 3}, ws, device));
    ctx.check(out.as_tensor().device() == device, at_rank(r, "dtensor"), "device",
              fmt::format("gathered on {}, the DTensor lives on {}", out.as_tensor().device().str(), device.str()));
  });
}

void gather_cpu_offload_ranks_only(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Value sd = Value::dict({{"dtensor", Value(sharded_rows({3, 3, 3}, r, ws, source_device(src)))}});
    const Value gathered = ctx.utilities().gather_state_dict(sd, comm, {true, {0, 2}, true});
    if (r == 0 || r == 2) {
      const Value out = gathered["dtensor"];
      check_equal(ctx, r, "dtensor", out.as_tensor(), expected_rows({3, 3, 3}, ws, Device::cpu()));
      ctx.check(on_cpu(out), at_rank(r, "dtensor"), "cpu_offload", "the gathered tensor is not on the CPU");
    } else {
      ctx.check(gathered.kind() == Value::Kind::dict && gathered.as_dict().size() == 0, at_rank(r, "<root>"),
                "ranks_only", "an unlisted rank must get {}");
    }
  });
}

void offload_ranks_only(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Value sd = Value::dict({{"tensor1", Value(Tensor::arange(10, DType::int64, device))},
                                  {"tensor2", Value(Tensor::full({10}, 1.0, DType::float32, device))}});
    const Value out = ctx.utilities().offload_state_dict_to_cpu(sd, r, {0, 2}, true);
    if (r == 0 || r == 2) {
      for (const char* key : {"tensor1", "tensor2"}) {
        ctx.check(on_cpu(out[key]), at_rank(r, key), "device", "not on the CPU");
      }
      check_equal(ctx, r, "tensor1", out["tensor1"].as_tensor(), Tensor::arange(10, DType::int64));
      check_equal(ctx, r, "tensor2", out["tensor2"].as_tensor(), Tensor::full({10}, 1.0, DType::float32));
    } else {
      ctx.check(out.kind() == Value::Kind::dict && out.as_dict().size() == 0, at_rank(r, "<root>"), "ranks_only",
                "an unlisted rank must get {}");
    }
  });
}

void complicated_dict(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Tensor full = expected_rows({3, 3, 3}, ws, device);
    const Tensor ones = Tensor::full({10}, 1.0, DType::float32, device);
    std::vector<Value> ltensor, ldtensor;
    for (int i = 0; i < 10; ++i) {
      ltensor.push_back(Value(full));
      ltensor.push_back(Value(ones));
      ldtensor.push_back(Value(sharded_rows({3, 3, 3}, r, ws, device)));
      ldtensor.push_back(Value(ones));
    }
    const Value dist_sd = Value::dict({{"local", Value(sharded_rows({3, 3, 3}, r, ws, device))},
                                       {"list", Value::list(ldtensor)},
                                       {"arange", Value(Tensor::arange(10, DType::int64, device))}});
    const Value out = ctx.utilities().gather_state_dict(dist_sd, comm, {});
    check_equal(ctx, r, "local", out["local"].as_tensor(), full);
    ctx.require(out["list"].kind() == Value::Kind::list && out["list"].as_list().items.size() == 20, at_rank(r, "list"),
                "structure", "the list did not come back with 20 items");
    for (std::size_t i = 0; i < 20; ++i) {
      check_equal(ctx, r, fmt::format("list.{}", i), out["list"].at(i).as_tensor(), ltensor[i].as_tensor());
    }
    check_equal(ctx, r, "arange", out["arange"].as_tensor(), Tensor::arange(10, DType::int64));
  });
}

void distribute_tensors(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    // Every rank builds the same full tensors (same seeds), and DTensors over independent values.
    const Tensor even = Tensor::random({ws, 2}, DType::float32, 11);
    const Tensor uneven = Tensor::random({1, 2}, DType::float32, 12);
    const auto mesh = world_mesh(ws, device);
    const auto even_dt =
        DTensor::distribute(Tensor::random({ws, 2}, DType::float32, 21, device), mesh, {Placement::shard(0)}, r);
    const auto uneven_dt =
        DTensor::distribute(Tensor::random({1, 2}, DType::float32, 22, device), mesh, {Placement::shard(0)}, r);
    Value local = Value::dict({{"even", Value::list({Value(even_dt), Value(even)})},
                               {"uneven", Value::list({Value(uneven_dt), Value(uneven)})}});
    ctx.utilities().distribute_tensors(local, {"even", "uneven"});
    for (const auto& [key, full] : {std::pair<const char*, Tensor>{"even", even}, {"uneven", uneven}}) {
      const Value v = local[key];
      ctx.require(v.kind() == Value::Kind::dtensor, at_rank(r, key), "kind", "not a DTensor after distribution");
      const auto& dt = *v.as_dtensor_node();
      ctx.check(dt.global_shape() == IntList(full.sizes().begin(), full.sizes().end()), at_rank(r, key), "global size",
                "differs from the full tensor's");
      const LocalShard block = dt.local_shard();
      Tensor expected = full.narrow(0, std::min(block.offset[0], full.sizes()[0]), block.shape[0]);
      check_equal(ctx, r, key, dt.local(), expected);
    }
    ctx.check(local["even"].as_dtensor_node() == even_dt, at_rank(r, "even"), "identity",
              "the existing DTensor must be updated in place and kept");
  });
}

void cpu_offload_for_dtensor(CaseContext& ctx, Source src, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Tensor ones = Tensor::full({8, 8}, 1.0, DType::float32, device);
    const auto dt = std::make_shared<DTensor>(
        ones, DTensorSpec{world_mesh(ws, device), {Placement::shard(0)}, {8 * ws, 8}, {8, 1}}, r);
    const Value sd = Value::dict({{"k", Value(dt)}});
    auto& utils = ctx.utilities();
    const Value cpu_sd = utils.create_cpu_state_dict(sd, false, false);
    ctx.require(cpu_sd["k"].kind() == Value::Kind::dtensor, at_rank(r, "k"), "kind", "not a DTensor");
    const auto& cpu_dt = *cpu_sd["k"].as_dtensor_node();
    ctx.check(cpu_dt.local().device().is_cpu(), at_rank(r, "k"), "device",
              "the CPU copy's local tensor is not on the CPU");
    ctx.check(cpu_dt.spec() == dt->spec(), at_rank(r, "k"), "spec", "the CPU copy lost the spec");
    ctx.check(!Tensor::equal(cpu_dt.local(), ones), at_rank(r, "k"), "fresh buffer",
              "the new CPU buffer already holds the source values");
    (void)utils.copy_state_dict(sd, cpu_sd, true, true);
    check_equal(ctx, r, "k", cpu_dt.local(), ones);
    Tensor twos = dt->local();
    twos.fill_(2.0);
    ctx.check(!Tensor::equal(cpu_dt.local(), twos), at_rank(r, "k"), "independence",
              "the CPU copy follows the source without a copy");
    (void)utils.copy_state_dict(sd, cpu_sd, true, true);
    check_equal(ctx, r, "k", cpu_dt.local(), twos);
  });
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dist_upstream) {
  Requirements stage = utilities_requirements();
  stage.state_dict_utilities = false;
  stage.pin_memory = stage.share_memory = true;
  add_world_cases(
      registry, "stager", "dtensor",
      "a DTensor [Shard(0)] is staged: local tensor copied to pinned shared CPU memory, spec and global size "
      "kept",
      "TestDTensorStateDictStager.test_dtensor", Profile::upstream, kBothSources, kWorlds2And4, stage_dtensor, stage,
      PinShare{true, true});
  add_world_cases(registry, "utils", "gather_dtensor",
                  "gather_state_dict turns a DTensor [Shard(0)] into the full tensor "
                  "on the DTensor's device",
                  "TestStateDictUtils.test_gather_state_dict_dtensor", Profile::upstream, kBothSources, kWorlds2And4,
                  gather_dtensor, utilities_requirements());
  add_world_cases(registry, "utils", "gather_cpu_offload_ranks_only",
                  "gather with cpu_offload and ranks_only=(0, 2): full CPU tensors on ranks 0 and 2, {} elsewhere",
                  "TestStateDictUtils.test_gather_with_cpu_and_ranks_only", Profile::upstream, kBothSources, kWorld4,
                  gather_cpu_offload_ranks_only, utilities_requirements());
  add_world_cases(registry, "utils", "offload_ranks_only",
                  "offload_state_dict_to_cpu with ranks_only=(0, 2): CPU values on ranks 0 and 2, {} elsewhere",
                  "TestStateDictUtils.test_cpu_and_ranks_only", Profile::upstream, kBothSources, kWorld4,
                  offload_ranks_only, utilities_requirements());
  add_world_cases(registry, "utils", "complicated_dict",
                  "gather of a dict with a DTensor, a 20-item list of DTensors and tensors, and a plain tensor",
                  "TestStateDictUtils.test_complicated_dict", Profile::upstream, kBothSources, kWorld4,
                  complicated_dict, utilities_requirements());
  add_world_cases(
      registry, "utils", "distribute_tensors",
      "distribute_tensors copies each rank's block of an even (ws x 2) and an uneven (1 x 2) full tensor into "
      "the DTensors, in place",
      "TestStateDictUtils.test_state_dict_util_distribute_tensors", Profile::upstream, kBothSources, kWorlds2And4,
      distribute_tensors, utilities_requirements());
  add_world_cases(registry, "utils", "cpu_offload_for_dtensor",
                  "create_cpu_state_dict of a DTensor gives a CPU DTensor with the spec; copy_state_dict fills it and "
                  "refills it after the source changes",
                  "TestStateDictUtils.test_cpu_offload_for_dtensor", Profile::upstream, kBothSources, kWorlds2And4,
                  cpu_offload_for_dtensor, utilities_requirements());
}

}  // namespace stagekit::conformance
