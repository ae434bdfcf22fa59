// The whole contract on one rich state dict: every container and scalar kind, views of every layout,
// attributes, aliasing, objects — verified strictly after a first (cold) and a second (warm) stage.
// Its scalar leaves hold the values a number or text held any other way would change: NaN with a
// payload, -0.0, infinities, the smallest subnormal, 64-bit ints beyond 2^53 (RNG seeds), strings
// with NUL and multi-byte characters, bytes of every value; and None at dict keys and attributes,
// as an optimizer's param_groups hold it.
#include <cstring>
#include <limits>

#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

double nan_with_payload() {
  const std::uint64_t bits = 0x7FF8000000000123ULL;
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

double from_bits(std::uint64_t bits) {
  double d = 0;
  std::memcpy(&d, &bits, sizeof d);
  return d;
}

// Numbers and text that survive only an exact copy (a double holds no int beyond 2^53 exactly, and
// arithmetic or a text round trip canonicalises -0.0 and NaNs).
Value exact_only_scalars() {
  std::vector<std::byte> every_byte(256);
  for (std::size_t i = 0; i < every_byte.size(); ++i) every_byte[i] = static_cast<std::byte>(i);
  // A 1 MiB bytes leaf (a serialized tokenizer or RNG state): bytes are atomic at any size, never a tensor.
  std::vector<std::byte> big_bytes(std::size_t{1} << 20);
  for (std::size_t i = 0; i < big_bytes.size(); ++i) big_bytes[i] = static_cast<std::byte>((i * 131) >> 3);
  return Value::dict({
      {"floats", Value::list({-0.0, from_bits(0xFFF0000000000ABCULL), std::numeric_limits<double>::infinity(),
                              -std::numeric_limits<double>::infinity(), std::numeric_limits<double>::denorm_min()})},
      {"ints", Value::list({std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max(),
                            std::int64_t{9007199254740993}, std::int64_t{-9007199254740993}})},
      {"texts", Value::list({std::string("nul\0inside", 10), "na\xc3\xafve \xe6\x97\xa5\xe6\x9c\xac", ""})},
      {"bytes", Value::list({Bytes{std::move(every_byte)}, Bytes{}, Bytes{std::move(big_bytes)}})},
  });
}

// An AdamW optimizer's param_groups as torch writes them: None, False and 0-valued options stand
// next to the others, and each must be staged at its key (None is a value, not an absent entry).
Value adamw_param_groups() {
  return Value::list({Value::dict({{"lr", 0.001},
                                   {"betas", Value::tuple({0.9, 0.999})},
                                   {"eps", 1e-08},
                                   {"weight_decay", 0.01},
                                   {"amsgrad", false},
                                   {"foreach", Value()},
                                   {"maximize", false},
                                   {"capturable", false},
                                   {"differentiable", false},
                                   {"fused", Value()},
                                   {"initial_lr", Value()},
                                   {"params", Value::list({0, 1})}})});
}

Value make_rich_state_dict(Device dev) {
  Tensor weight = Tensor::random({6, 8}, DType::float32, 61, dev);
  Tensor bias = Tensor::random({8}, DType::bfloat16, 62, dev);
  Tensor step = Tensor::scalar(1000, DType::int64, dev);
  Tensor expanded = Tensor::random({1, 8}, DType::float16, 63, dev).expand({5, 8});
  weight.set_attr("param_name", "layer.weight");
  weight.set_attr("companion", bias);
  weight.set_attr("grad_scale", Value());  // an attribute set to None
  const Value shared_list = Value::list({1, 2, 3});
  auto int_keyed = std::make_shared<Dict>();
  int_keyed->set(std::int64_t{0}, Tensor::random({3}, DType::int32, 64, dev));
  int_keyed->set(std::int64_t{7}, "seven");
  // Keys that a key kept in 32 bits or read through a double would change (int keys are parameter
  // ids in an optimizer's state, but nothing bounds them).
  int_keyed->set(std::int64_t{-1}, "minus one");
  int_keyed->set(std::int64_t{1} << 31, "2^31");
  int_keyed->set(std::int64_t{9007199254740993}, "2^53 + 1");
  int_keyed->set(std::numeric_limits<std::int64_t>::min(), "int64 min");
  const Value optimizer_state =
      Value::object("AdamState", {{"exp_avg", Tensor::random({6, 8}, DType::float32, 65, dev)},
                                  {"exp_avg_sq", Tensor::random({6, 8}, DType::float32, 66, dev)},
                                  {"step", step}});
  return Value::dict({
      {"weight", weight},
      {"weight_t", weight.transpose(0, 1)},
      {"weight_every_third_column", weight.slice(1, 1, 8, 3)},
      {"weight_row2", weight.select(0, 2)},
      {"weight_windows", weight.view({48}).as_strided({5, 8}, {4, 1}, 3)},
      {"bias", bias},
      {"expanded", expanded},
      {"empty", Tensor::empty({0, 4}, DType::float64, dev)},
      {"optimizer", Value::dict({{"state", optimizer_state}, {"lr", 0.001}, {"nan", nan_with_payload()}})},
      {"frozen", Value::object("FrozenConfig",
                               {{"betas", Value::tuple({0.9, 0.999})}, {"step", step}, {"schedule", Value()}}, true)},
      {"int_keyed", Value(int_keyed)},
      {"mixed", Value::list({Value(), true, -5, 2.5, "text", Bytes{{std::byte{0}, std::byte{255}}}, bias})},
      // A plain tuple around tensors (an optimizer's (exp_avg, exp_avg_sq) pair): a new tuple of staged
      // tensors, never the caller's own tuple (spec B.1.4; only a tuple of plain values may be).
      {"moments", Value::tuple({bias, weight.select(0, 1), 2})},
      {"shared_list_a", shared_list},
      {"shared_list_b", shared_list},
      {"step_again", step},
      {"exact_only", exact_only_scalars()},
      {"param_groups", adamw_param_groups()},
  });
}

void full_contract_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value source = make_rich_state_dict(dev);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value cold = stage_or_fail(ctx, *stager, source, "cold");
  ctx.add_failures(verify_staged(source, cold, memory_expectation(cfg)));
  Tensor(source["weight"].as_tensor()).random_(99);
  Tensor(source["bias"].as_tensor()).fill_(-1.0);
  const Value warm = stage_or_fail(ctx, *stager, source, "warm");
  ctx.add_failures(verify_staged(source, warm, memory_expectation(cfg)));
}

// Many distinct storages of one size next to views of some of them: staged buffers must share
// exactly where the sources share — the direction PyTorch's helper does not check included.
void sharing_both_directions_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto sd = std::make_shared<Dict>();
  for (int i = 0; i < 8; ++i) {
    const Tensor t = Tensor::random({16, 16}, DType::float32, 300 + static_cast<std::uint64_t>(i), dev);
    sd->set(fmt::format("p{}", i), t);
    if (i % 2 == 0) sd->set(fmt::format("p{}_rows", i), t.narrow(0, 4, 8));
  }
  const Value source(sd);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, source, "sharing");
  ctx.add_failures(verify_staged(source, staged, memory_expectation(cfg)));
  const DistinctStorages d = distinct_storages(staged);
  ctx.check(d.count == 8, "<staged>", "storage sharing",
            fmt::format("{} distinct staged storages for 8 distinct source storages", d.count));
}

// A large flat dict (the shape of real checkpoints, and where an implementation may parallelise):
// thousands of small tensors, with views sharing storages, a tensor under two keys, attributes and
// a nested dict among them; staged cold and warm.
void many_tensors_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto sd = std::make_shared<Dict>();
  constexpr int kTensors = 5000;
  Tensor shared_base = Tensor::random({64, 8}, DType::float32, 400, dev);
  for (int i = 0; i < kTensors; ++i) {
    const std::string key = fmt::format("layer{}.weight", i);
    if (i % 500 == 7) {
      sd->set(key, shared_base.narrow(0, i % 64, 1));  // views of one storage, spread over the dict
    } else if (i % 1000 == 11) {
      sd->set(key, shared_base);  // the same tensor object under several keys
    } else if (i == 2500) {
      Tensor t = Tensor::random({16}, DType::bfloat16, 401, dev);
      t.set_attr("note", "middle");
      sd->set(key, t);
    } else if (i == 4000) {
      sd->set(key, Value::dict({{"inner", Tensor::random({4}, DType::int64, 402, dev)}}));
    } else {
      sd->set(key, Tensor::random({static_cast<std::int64_t>(8 + i % 56)}, DType::float32,
                                  500 + static_cast<std::uint64_t>(i), dev));
    }
  }
  const Value source(sd);
  auto stager = ctx.make_stager(stager_config(cfg));
  MemoryExpectation memory = memory_expectation(cfg);
  const Value cold = stage_or_fail(ctx, *stager, source, "cold");
  ctx.add_failures(verify_staged(source, cold, memory));
  Tensor(shared_base).fill_(3.0);
  Tensor(source["layer100.weight"].as_tensor()).fill_(-1.0);
  const Value warm = stage_or_fail(ctx, *stager, source, "warm");
  ctx.add_failures(verify_staged(source, warm, memory));
  // Every buffer is reused, or none is (a stager that reuses nothing is left to stager.caching): a
  // cache entry goes only with its source or at close(), however many there are (spec B.1.3).
  const std::vector<TensorLeaf> cold_leaves = tensor_leaves(cold);
  const std::vector<TensorLeaf> warm_leaves = tensor_leaves(warm);
  if (cold_leaves.size() != warm_leaves.size()) return;  // verify_staged() has said why
  std::size_t reused = 0;
  std::string first_new;
  for (std::size_t i = 0; i < cold_leaves.size(); ++i) {
    if (cold_leaves[i].tensor.storage().data() == warm_leaves[i].tensor.storage().data()) {
      ++reused;
    } else if (first_new.empty()) {
      first_new = warm_leaves[i].path;
    }
  }
  ctx.check(reused == 0 || reused == cold_leaves.size(), first_new.empty() ? "<root>" : first_new, "buffer reuse",
            fmt::format("the warm stage reused the buffers of {} of {} tensors and allocated the others again (the "
                        "first: {}): a cache entry must go only with its source or at close(), not to bound the "
                        "cache",
                        reused, cold_leaves.size(), first_new));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(full_contract) {
  add_matrix(registry, "many_tensors",
             "5,000 small tensors in one dict, with views of a shared storage, a tensor under several keys, an "
             "attribute and a nested dict among them, stage exactly cold and warm, the warm stage into every "
             "buffer of the cold one (or none)",
             "strict", Profile::strict, kBothSources, kFourConfigs, many_tensors_case);
  add_matrix(registry, "sharing_both_directions",
             "Eight same-size storages and views of half of them: staged tensors share a buffer exactly when their "
             "sources share a storage",
             "strict", Profile::strict, kBothSources, kFourConfigs, sharing_both_directions_case);
  add_matrix(registry, "full_contract",
             "A rich state dict (every value kind, scalars only an exact copy keeps, views of every layout, "
             "attributes, aliasing, objects) stages "
             "exactly, cold and warm",
             "strict", Profile::strict, kBothSources, kFourConfigs, full_contract_case);
}

}  // namespace stagekit::conformance
