// create_cpu_state_dict, copy_state_dict and check_state_dict_similarity: PyTorch's
// test_create_cpu_state_dict (spec A.4.5) in its four pin/share configurations, and the companion
// rules of the strict profile (spec B.6.6, B.6.8, C.4.1-C.4.3).
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "dist_fixtures.h"
#include "stagekit/core/cuda.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

Requirements utilities_with(PinShare c) {
  Requirements r;
  r.state_dict_utilities = true;
  r.dtensor = true;
  r.sharded_tensor = true;
  r.pin_memory = c.pin;
  r.share_memory = c.share;
  return r;
}

// The upstream input: tensors, a ShardedTensor and a DTensor holding 50r..50r+49, byte payloads,
// a 0-dim step, a float and a nested list.
Value create_input(int r, int ws, Device device) {
  const Tensor block = Tensor::arange(50 * ws, DType::float32, device).view({5 * ws, 10}).narrow(0, 5 * r, 5).clone();
  ShardedTensorMetadata meta;
  for (int i = 0; i < ws; ++i) meta.shards.push_back({{5 * i, 0}, {5, 10}, i, device});
  meta.size = {5 * ws, 10};
  meta.dtype = DType::float32;
  const auto st = std::make_shared<ShardedTensor>(
      std::vector<LocalTensorShard>{{block.clone(), meta.shards[static_cast<std::size_t>(r)]}}, meta, r);
  const auto dt = DTensor::distribute(Tensor::arange(50 * ws, DType::float32, device).view({5 * ws, 10}),
                                      world_mesh(ws, device), {Placement::shard(0)}, r);
  Bytes payload{std::vector<std::byte>(40, std::byte{0x3f})};
  return Value::dict({{"tensor1", Value(Tensor::arange(10, DType::int64, device))},
                      {"tensor2", Value(Tensor::full({10}, 1.0, DType::float32, device))},
                      {"sharded_tensor", Value(st)},
                      {"dtensor", Value(dt)},
                      {"non_tensor_bytes", Value(payload)},
                      {"step", Value(Tensor::scalar(7.0, DType::float32))},
                      {"lr", Value(1.5)},
                      {"nested", Value::dict({{"list", Value::list({1, 2, 3, 4})}})}});
}

void create_cpu_state_dict(CaseContext& ctx, Source src, int ws, PinShare c) {
  ctx.run_ranks(ws, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const Device device = source_device(src);
    const Value sd = create_input(r, ws, device);
    auto& utils = ctx.utilities();
    const Value cpu_sd = utils.create_cpu_state_dict(sd, c.pin, c.share);
    // 1-2: similar, and no longer similar once a tensor has the wrong size.
    ctx.check(utils.check_state_dict_similarity(sd, cpu_sd), at_rank(r, "<root>"), "similarity",
              "the created CPU state dict is not similar to its source");
    Value wrong = Value::dict({});
    for (const auto& [k, v] : cpu_sd.as_dict().entries()) wrong.as_dict().set(k, v);
    wrong.as_dict().set("tensor1", Value(Tensor::arange(11, DType::int64)));
    ctx.check(!utils.check_state_dict_similarity(sd, wrong), at_rank(r, "tensor1"), "similarity",
              "a tensor of another size is reported similar");
    // 3-5: copy, then every tensor is on the CPU and holds the source values.
    (void)utils.copy_state_dict(sd, cpu_sd, false, true);
    for (const char* key : {"tensor1", "tensor2"}) {
      ctx.check(cpu_sd[key].as_tensor().device().is_cpu(), at_rank(r, key), "device", "not on the CPU");
    }
    check_equal(ctx, r, "tensor1", cpu_sd["tensor1"].as_tensor(), Tensor::arange(10, DType::int64));
    check_equal(ctx, r, "tensor2", cpu_sd["tensor2"].as_tensor(), Tensor::full({10}, 1.0, DType::float32));
    const Tensor expected = Tensor::arange(50 * ws, DType::float32).view({5 * ws, 10}).narrow(0, 5 * r, 5);
    const auto& st = *cpu_sd["sharded_tensor"].as_sharded_tensor_node();
    ctx.require(st.local_shards().size() == 1, at_rank(r, "sharded_tensor"), "shards", "one local shard expected");
    check_equal(ctx, r, "sharded_tensor.0", st.local_shards()[0].tensor, expected);
    check_equal(ctx, r, "dtensor._local_tensor", cpu_sd["dtensor"].as_dtensor_node()->local(), expected);
    // The DTensor's spec and the ShardedTensor's metadata are the source's.
    const DTensor& source_dt = *sd["dtensor"].as_dtensor_node();
    const DTensor& created_dt = *cpu_sd["dtensor"].as_dtensor_node();
    ctx.check(created_dt.spec() == source_dt.spec(), at_rank(r, "dtensor"), "spec",
              fmt::format("{} instead of {}", created_dt.spec().str(), source_dt.spec().str()));
    const ShardedTensor& source_st = *sd["sharded_tensor"].as_sharded_tensor_node();
    ctx.check(
        st.metadata() == source_st.metadata() && st.local_shards()[0].metadata == source_st.local_shards()[0].metadata,
        at_rank(r, "sharded_tensor"), "shard metadata",
        fmt::format("local shard at offsets [{}], sizes [{}], {} (global [{}], {} shards) instead of offsets "
                    "[{}], sizes [{}], {} (global [{}], {} shards)",
                    fmt::join(st.local_shards()[0].metadata.offsets, ", "),
                    fmt::join(st.local_shards()[0].metadata.sizes, ", "), st.local_shards()[0].metadata.placement(),
                    fmt::join(st.metadata().size, ", "), st.metadata().shards.size(),
                    fmt::join(source_st.local_shards()[0].metadata.offsets, ", "),
                    fmt::join(source_st.local_shards()[0].metadata.sizes, ", "),
                    source_st.local_shards()[0].metadata.placement(), fmt::join(source_st.metadata().size, ", "),
                    source_st.metadata().shards.size()));
    // 6: fresh buffers, in the memory asked for (checked independently of the implementation).
    const std::pair<const char*, Tensor> buffers[] = {
        {"tensor1", cpu_sd["tensor1"].as_tensor()},
        {"tensor2", cpu_sd["tensor2"].as_tensor()},
        {"sharded_tensor.0", st.local_shards()[0].tensor},
        {"dtensor._local_tensor", cpu_sd["dtensor"].as_dtensor_node()->local()}};
    const std::pair<const char*, Tensor> sources[] = {
        {"tensor1", sd["tensor1"].as_tensor()},
        {"tensor2", sd["tensor2"].as_tensor()},
        {"sharded_tensor.0", sd["sharded_tensor"].as_sharded_tensor_node()->local_shards()[0].tensor},
        {"dtensor._local_tensor", sd["dtensor"].as_dtensor_node()->local()}};
    for (std::size_t i = 0; i < 4; ++i) {
      ctx.check(buffers[i].second.data_ptr() != sources[i].second.data_ptr(), at_rank(r, buffers[i].first),
                "fresh buffer", "the CPU tensor has the source's address");
      const void* p = buffers[i].second.data_ptr();
      const std::size_t n = buffers[i].second.addressed_bytes();
      // Both directions: pinned exactly when asked, shared exactly when asked.
      const probe::Verdict locked = probe::page_locked(p, n);
      ctx.check(
          locked.yes == c.pin, at_rank(r, buffers[i].first), "page-locked",
          fmt::format("expected {}page-locked (pin_memory={}); probe: {}", c.pin ? "" : "not ", c.pin, locked.detail));
      const probe::Verdict shared = probe::shared_mapping(p, n);
      ctx.check(shared.yes == c.share, at_rank(r, buffers[i].first), "shared memory",
                fmt::format("expected {}a shared mapping (share_memory={}); probe: {}", c.share ? "" : "not ", c.share,
                            shared.detail));
    }
    // 7: non-tensor leaves come through unchanged.
    ctx.check(cpu_sd["non_tensor_bytes"].as_bytes() == sd["non_tensor_bytes"].as_bytes(),
              at_rank(r, "non_tensor_bytes"), "bytes", "differ");
    ctx.check(cpu_sd["lr"].as_double() == 1.5, at_rank(r, "lr"), "value", "not 1.5");
    check_equal(ctx, r, "step", cpu_sd["step"].as_tensor(), Tensor::scalar(7.0, DType::float32));
    ctx.check(cpu_sd["step"].as_tensor().device().is_cpu(), at_rank(r, "step"), "device", "not on the CPU");
    // The nested container compared whole: structure, keys, order and every value.
    for (Failure f : compare_like_upstream(sd["nested"], cpu_sd["nested"], Device::cpu())) {
      const bool root = f.path.empty() || f.path == "<root>";
      ctx.check(false, at_rank(r, root ? std::string("nested") : "nested." + f.path), f.property, f.detail);
    }
  });
}

void copy_checks_companions(CaseContext& ctx, Source src, int) {
  // Each companion differs from the source in one way; copy must raise an error naming the path.
  auto& utils = ctx.utilities();
  const Device device = source_device(src);
  const Value source =
      Value::dict({{"a", Value(Tensor::arange(6, DType::float32, device).view({2, 3}))},
                   {"b", Value::list({Value(Tensor::full({4}, 1.0, DType::int32, device)), Value(3)})}});
  struct Variant {
    const char* name;
    Value companion;
    const char* path;
  };
  const Value ok_b = Value::list({Value(Tensor::zeros({4}, DType::int32)), Value(0)});
  const Variant variants[] = {
      {"missing key", Value::dict({{"a", Value(Tensor::zeros({2, 3}, DType::float32))}}), "<root>"},
      {"extra key", Value::dict({{"a", Value(Tensor::zeros({2, 3}, DType::float32))}, {"b", ok_b}, {"c", Value(1)}}),
       "<root>"},
      {"list length",
       Value::dict({{"a", Value(Tensor::zeros({2, 3}, DType::float32))},
                    {"b", Value::list({Value(Tensor::zeros({4}, DType::int32))})}}),
       "b"},
      {"dtype", Value::dict({{"a", Value(Tensor::zeros({2, 3}, DType::float64))}, {"b", ok_b}}), "a"},
      {"shape", Value::dict({{"a", Value(Tensor::zeros({3, 2}, DType::float32))}, {"b", ok_b}}), "a"},
      {"kind", Value::dict({{"a", Value(1.0)}, {"b", ok_b}}), "a"},
  };
  for (const Variant& v : variants) {
    bool raised = false;
    try {
      (void)utils.copy_state_dict(source, v.companion, false, true);
    } catch (const InvalidArgument& e) {
      raised = true;
      ctx.check(e.path() == v.path, fmt::format("<{}>", v.name), "error path",
                fmt::format("the error names '{}', expected '{}': {}", e.path(), v.path, e.what()));
    } catch (const std::exception& e) {
      raised = true;
      ctx.check(false, fmt::format("<{}>", v.name), "error kind",
                fmt::format("expected an invalid-argument error (CompanionMismatch), got: {}", e.what()));
    }
    ctx.check(raised, fmt::format("<{}>", v.name), "companion check",
              "copy_state_dict accepted a mismatching companion");
    ctx.check(!utils.check_state_dict_similarity(source, v.companion), fmt::format("<{}>", v.name), "similarity",
              "reported similar");
  }
  // A mismatch three levels down names the whole path (model, layers, 0, w, in order), not its top.
  {
    const Value nested_source = Value::dict(
        {{"model",
          Value::dict({{"layers", Value::list({Value::dict(
                                      {{"w", Value(Tensor::arange(6, DType::float32, device).view({2, 3}))}})})}})}});
    const Value nested_companion = Value::dict(
        {{"model",
          Value::dict(
              {{"layers", Value::list({Value::dict({{"w", Value(Tensor::zeros({3, 2}, DType::float32))}})})}})}});
    std::string named;
    try {
      (void)utils.copy_state_dict(nested_source, nested_companion, false, true);
    } catch (const InvalidArgument& e) {
      named = e.path().empty() ? std::string(e.what()) : e.path();
    } catch (const std::exception& e) {
      named = "<not an invalid-argument error> " + std::string(e.what());
    }
    std::size_t at = 0;
    bool in_order = !named.empty();
    for (const char* part : {"model", "layers", "0", "w"}) {
      at = in_order ? named.find(part, at) : std::string::npos;
      in_order = at != std::string::npos;
    }
    ctx.check(in_order, "model.layers.0.w", "error path",
              named.empty() ? "copy_state_dict accepted a companion whose model.layers[0].w has another shape"
                            : fmt::format("the error names '{}', not the whole path model.layers.0.w", named));
  }
  // The matching companion: tensors copied, non-tensor leaves of the companion untouched, the result
  // holds the companion's tensors and the source's non-tensor values.
  // A companion of its own (the mismatching ones above share ok_b, which a failed copy may have
  // written into).
  const Value companion = Value::dict({{"a", Value(Tensor::zeros({2, 3}, DType::float32))},
                                       {"b", Value::list({Value(Tensor::zeros({4}, DType::int32)), Value(0)})}});
  const Value out = utils.copy_state_dict(source, companion, false, true);
  check_equal(ctx, 0, "a", companion["a"].as_tensor(), Tensor::arange(6, DType::float32).view({2, 3}));
  check_equal(ctx, 0, "b.0", companion["b"].at(0).as_tensor(), Tensor::full({4}, 1.0, DType::int32));
  for (const char* key : {"a", "b.0"}) {
    const Value got = key == std::string("a") ? out["a"] : out["b"].at(0);
    const Value want = key == std::string("a") ? companion["a"] : companion["b"].at(0);
    ctx.check(got.is_tensor() && got.as_tensor().is_same(want.as_tensor()), key, "identity",
              "the result's tensor is not the companion's tensor");
  }
  ctx.check(companion["b"].at(1).as_int() == 0, "b.1", "non-tensor leaves",
            "the companion's non-tensor leaf was changed");
  ctx.check(out["b"].at(1).as_int() == 3, "b.1", "non-tensor leaves", "the result must carry the source's value");
  // A non-blocking copy: from CPU sources it has completed on return (the contract; upstream's
  // copy_(non_blocking=True) between CPU tensors is synchronous); from CUDA sources once the device
  // is synchronised. 4 MiB and a small tensor, read at once.
  const Value nb_source = Value::dict({{"big", Value(Tensor::random({1024, 1024}, DType::float32, 653, device))},
                                       {"small", Value(Tensor::random({16}, DType::float32, 654, device))}});
  const Value nb_companion = Value::dict({{"big", Value(Tensor::zeros({1024, 1024}, DType::float32))},
                                          {"small", Value(Tensor::zeros({16}, DType::float32))}});
  (void)utils.copy_state_dict(nb_source, nb_companion, true, true);
  if (device.is_cuda()) cuda::device_synchronize();
  for (const char* key : {"big", "small"}) {
    ctx.check(Tensor::equal(nb_companion[key].as_tensor(), nb_source[key].as_tensor().to(Device::cpu())), key,
              "non-blocking copy",
              device.is_cpu() ? "not complete when copy_state_dict(non_blocking=true) returned from CPU sources"
                              : "not complete after the device was synchronised");
  }
}

void similarity_has_no_side_effect(CaseContext& ctx, Source src, int) {
  auto& utils = ctx.utilities();
  const Value source = Value::dict({{"w", Value(Tensor::full({8}, 5.0, DType::float32, source_device(src)))}});
  const Value other = Value::dict({{"w", Value(Tensor::zeros({8}, DType::float32))}});
  ctx.check(utils.check_state_dict_similarity(source, other), "w", "similarity", "same dtype and shape: similar");
  ctx.check(Tensor::equal(other["w"].as_tensor(), Tensor::zeros({8}, DType::float32)), "w", "side effect",
            "check_state_dict_similarity wrote into the compared state dict");
  const Value not_a_tensor = Value::dict({{"w", Value(2)}});
  bool result = true;
  try {
    result = utils.check_state_dict_similarity(source, not_a_tensor);
  } catch (const std::exception& e) {
    ctx.check(false, "w", "similarity", fmt::format("raised instead of returning false: {}", e.what()));
  }
  ctx.check(!result, "w", "similarity", "a non-tensor companion leaf is reported similar");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dist_create_copy) {
  for (PinShare c : kFourConfigs) {
    add_world_cases(
        registry, "utils", "create_cpu_state_dict",
        "create_cpu_state_dict gives similar fresh CPU buffers (pinned/shared as asked, checked by probes) "
        "that copy_state_dict fills, with the DTensor's spec and the ShardedTensor's metadata kept; non-tensor "
        "leaves unchanged",
        "TestStateDictUtils.test_create_cpu_state_dict", Profile::upstream, kBothSources, kWorlds2And4,
        [c](CaseContext& ctx, Source s, int ws) { create_cpu_state_dict(ctx, s, ws, c); }, utilities_with(c), c);
  }
  const std::array<int, 1> one = {1};
  add_world_cases(registry, "utils", "copy_companion_mismatch",
                  "copy_state_dict rejects a companion with a missing or extra key, another list length, dtype, shape "
                  "or kind, naming the whole path (three levels down too); a matching one gets the tensors and keeps "
                  "its non-tensor leaves; a "
                  "non-blocking copy from CPU sources has completed on return",
                  "strict", Profile::strict, kBothSources, one, copy_checks_companions, utilities_with({}));
  add_world_cases(registry, "utils", "similarity_no_side_effect",
                  "check_state_dict_similarity never writes into the compared dict and returns false (not an error) "
                  "for a non-tensor companion leaf",
                  "strict", Profile::strict, kBothSources, one, similarity_has_no_side_effect, utilities_with({}));
}

}  // namespace stagekit::conformance
