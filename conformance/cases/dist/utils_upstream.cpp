// The cases of PyTorch's TestStateDictUtils (spec A.4) and TestDTensorStateDictStager.test_dtensor
// (A.2.1), each rank a thread of a thread world, CPU and CUDA sources.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dist_fixtures.h"
#include "stagekit/core/cuda.h"

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

// (t + 1) * 2, element by element (float32): the input upstream builds with DTensor arithmetic.
Tensor plus_one_times_two(const Tensor& t) {
  Tensor host = t.to(Device::cpu());  // a contiguous copy
  auto* p = static_cast<float*>(host.data_ptr());
  for (std::int64_t i = 0; i < host.numel(); ++i) p[i] = (p[i] + 1.0F) * 2.0F;
  return t.device().is_cpu() ? host : host.to(t.device());
}

// The largest |a[i] - (b[i] + 1) * 2| over float32 tensors of the same shape, read back on the CPU.
double distance_from_plus_one_times_two(const Tensor& a, const Tensor& b) {
  const std::vector<std::byte> x = a.to_bytes();
  const std::vector<std::byte> y = b.to_bytes();
  if (x.size() != y.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (std::size_t i = 0; i + sizeof(float) <= x.size(); i += sizeof(float)) {
    float u = 0;
    float v = 0;
    std::memcpy(&u, x.data() + i, sizeof u);
    std::memcpy(&v, y.data() + i, sizeof v);
    worst = std::max(worst, std::abs(static_cast<double>(u) - (static_cast<double>(v) + 1.0) * 2.0));
  }
  return worst;
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
    const Device device = source_device(src);
    // dtensor = (DTensor(tensor, [Shard(0)]) + 1) * 2, as upstream builds it.
    const Tensor tensor = rank_tensor({3, 3}, r, device);
    const IntList global = {3 * ws, 3};
    const auto dt = std::make_shared<DTensor>(
        plus_one_times_two(tensor),
        DTensorSpec{world_mesh(ws, device), {Placement::shard(0)}, global, Tensor::contiguous_strides(global)}, r);
    // Upstream's sanity assertion on the input: the local shard is (tensor + 1) * 2.
    const double off = distance_from_plus_one_times_two(dt->local(), tensor);
    ctx.require(off <= 1e-6, at_rank(r, "dtensor"), "input",
                fmt::format("the input's local shard is not (tensor + 1) * 2 (off by up to {})", off));
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
    const Value gathered = ctx.utilities().gather_state_dict(sd, comm, {true, {0, 2}, true, std::nullopt});
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
    // Deep equality with the expected dict: its keys, in order, then every value.
    ctx.require(out.kind() == Value::Kind::dict, at_rank(r, "<root>"), "kind",
                fmt::format("the result is a {}, not a dict", value_kind_name(out.kind())));
    std::vector<std::string> keys;
    for (const auto& [k, v] : out.as_dict().entries()) keys.push_back(dict_key_str(k));
    ctx.require(keys == std::vector<std::string>{"local", "list", "arange"}, at_rank(r, "<root>"), "keys",
                fmt::format("the result has keys [{}], expected [local, list, arange]", fmt::join(keys, ", ")));
    ctx.require(out["local"].is_tensor(), at_rank(r, "local"), "kind",
                fmt::format("gathered as a {}, not a plain tensor", value_kind_name(out["local"].kind())));
    check_equal(ctx, r, "local", out["local"].as_tensor(), full);
    ctx.require(out["list"].kind() == Value::Kind::list && out["list"].as_list().items.size() == 20, at_rank(r, "list"),
                "structure", "the list did not come back with 20 items");
    for (std::size_t i = 0; i < 20; ++i) {
      const Value& item = out["list"].at(i);
      if (!ctx.check(item.is_tensor(), at_rank(r, fmt::format("list.{}", i)), "kind",
                     fmt::format("gathered as a {}, not a plain tensor", value_kind_name(item.kind())))) {
        continue;
      }
      check_equal(ctx, r, fmt::format("list.{}", i), item.as_tensor(), ltensor[i].as_tensor());
    }
    ctx.require(out["arange"].is_tensor(), at_rank(r, "arange"), "kind", "not a tensor");
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
    // What upstream's deep copy `ref` keeps: the DTensors' global strides and local values before.
    const std::map<std::string, std::pair<IntList, Tensor>> before = {
        {"even", {even_dt->spec().global_strides, even_dt->local().clone()}},
        {"uneven", {uneven_dt->spec().global_strides, uneven_dt->local().clone()}}};
    ctx.utilities().distribute_tensors(local, {"even", "uneven"});
    for (const auto& [key, full] : {std::pair<const char*, Tensor>{"even", even}, {"uneven", uneven}}) {
      const Value v = local[key];
      ctx.require(v.kind() == Value::Kind::dtensor, at_rank(r, key), "kind", "not a DTensor after distribution");
      const auto& dt = *v.as_dtensor_node();
      ctx.check(dt.global_shape() == IntList(full.sizes().begin(), full.sizes().end()), at_rank(r, key), "global size",
                "differs from the full tensor's");
      const auto& [strides, old_local] = before.at(key);
      ctx.check(dt.spec().global_strides == strides, at_rank(r, key), "strides",
                fmt::format("global strides [{}], before [{}]", fmt::join(dt.spec().global_strides, ", "),
                            fmt::join(strides, ", ")));
      if (old_local.numel() > 0) {
        ctx.check(!Tensor::equal(dt.local(), old_local), at_rank(r, key), "values replaced",
                  "the local block still holds its values from before distribution");
      }
      const auto& original = key == std::string("even") ? even_dt : uneven_dt;
      ctx.check(dt.spec().mesh == original->spec().mesh && dt.spec().placements == original->spec().placements,
                at_rank(r, key), "spec", "the DTensor's mesh or placements changed");
      // Rank r's block under Shard(0), computed here: rows [r * chunk, (r + 1) * chunk) of the full
      // tensor, clipped to it (chunk = ceil(rows / ws)).
      const std::int64_t rows = full.sizes()[0];
      const std::int64_t chunk = (rows + ws - 1) / ws;
      const std::int64_t begin = std::min<std::int64_t>(std::int64_t{r} * chunk, rows);
      const Tensor expected = full.narrow(0, begin, std::min(chunk, rows - begin));
      check_equal(ctx, r, key, dt.local(), expected);
      ctx.check(local[key].as_dtensor_node() == original, at_rank(r, key), "identity",
                "the existing DTensor must be updated in place and kept (spec C.4.11)");
    }
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
    // A non-blocking copy is awaited as upstream awaits it (torch.cuda.synchronize()) before its
    // destination is read or its source changed: see StateDictUtilitiesUnderTest::copy_state_dict.
    const auto await_copy = [&] {
      if (device.is_cuda()) cuda::device_synchronize();
    };
    (void)utils.copy_state_dict(sd, cpu_sd, true, true);
    await_copy();
    check_equal(ctx, r, "k", cpu_dt.local(), ones);
    Tensor twos = dt->local();
    twos.fill_(2.0);
    ctx.check(!Tensor::equal(cpu_dt.local(), twos), at_rank(r, "k"), "independence",
              "the CPU copy follows the source without a copy");
    (void)utils.copy_state_dict(sd, cpu_sd, true, true);
    await_copy();
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
