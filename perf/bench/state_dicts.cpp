#include "state_dicts.h"

#include <map>
#include <mutex>
#include <unordered_set>

#include <fmt/format.h>

#include "../driver/bench_context.h"

namespace stagekit::perf {
namespace {

struct Scale {
  int large_tensors;
  std::int64_t large_elements;
  int small_tensors;
  int layers;
  std::int64_t hidden;
  std::int64_t vocab;
  int view_bases;
  std::int64_t view_rows;
};

Scale scale() {
  if (bench_context().mode == Mode::smoke) return {8, 16 * 1024, 1000, 2, 64, 256, 4, 32};
  return {64, 4 * 1024 * 1024, 100'000, 24, 512, 8192, 32, 1024};
}

Value make_large(Device dev, const Scale& s) {
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < s.large_tensors; ++i) {
    d->set(fmt::format("tensor{}", i),
           Tensor::random({s.large_elements}, DType::float32, 1000 + static_cast<std::uint64_t>(i), dev));
  }
  return Value(d);
}

Value make_small(Device dev, const Scale& s) {
  auto d = std::make_shared<Dict>();
  d->reserve(static_cast<std::size_t>(s.small_tensors));
  if (dev.is_cpu()) {
    for (int i = 0; i < s.small_tensors; ++i)
      d->set(fmt::format("t{}", i), Tensor::random({256}, DType::float32, static_cast<std::uint64_t>(i)));
    return Value(d);
  }
  // On a device: one host tensor filled per entry would be slow; fill one, copy it into each.
  const Tensor pattern = Tensor::random({256}, DType::float32, 7);
  for (int i = 0; i < s.small_tensors; ++i) d->set(fmt::format("t{}", i), pattern.to(dev));
  return Value(d);
}

Value make_transformer(Device dev, const Scale& s) {
  auto model = std::make_shared<Dict>();
  std::vector<std::pair<std::string, IntList>> shapes;
  shapes.emplace_back("embed.weight", IntList{s.vocab, s.hidden});
  for (int l = 0; l < s.layers; ++l) {
    const std::string p = fmt::format("layers.{}.", l);
    for (const char* proj : {"q_proj", "k_proj", "v_proj", "o_proj"})
      shapes.emplace_back(p + "attn." + proj + ".weight", IntList{s.hidden, s.hidden});
    shapes.emplace_back(p + "mlp.up_proj.weight", IntList{4 * s.hidden, s.hidden});
    shapes.emplace_back(p + "mlp.down_proj.weight", IntList{s.hidden, 4 * s.hidden});
    for (const char* norm : {"input_norm", "post_attn_norm"}) {
      shapes.emplace_back(p + norm + ".weight", IntList{s.hidden});
      shapes.emplace_back(p + norm + ".bias", IntList{s.hidden});
    }
  }
  auto state = std::make_shared<Dict>();
  std::vector<Value> param_ids;
  std::uint64_t seed = 5000;
  for (std::size_t i = 0; i < shapes.size(); ++i) {
    const auto& [name, shape] = shapes[i];
    model->set(name, Tensor::random(shape, DType::float32, seed++, dev));
    state->set(static_cast<std::int64_t>(i),
               Value::dict({{"step", Tensor::scalar(100.0, DType::float32, dev)},
                            {"exp_avg", Tensor::random(shape, DType::float32, seed++, dev)},
                            {"exp_avg_sq", Tensor::random(shape, DType::float32, seed++, dev)}}));
    param_ids.emplace_back(static_cast<std::int64_t>(i));
  }
  const Value group = Value::dict({{"lr", 1e-4},
                                   {"betas", Value::tuple({0.9, 0.999})},
                                   {"eps", 1e-8},
                                   {"weight_decay", 0.01},
                                   {"params", Value::list(std::move(param_ids))}});
  return Value::dict({{"model", Value(model)},
                      {"optim", Value::dict({{"state", Value(state)}, {"param_groups", Value::list({group})}})}});
}

Value make_views(Device dev, const Scale& s) {
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < s.view_bases; ++i) {
    const Tensor base =
        Tensor::random({s.view_rows, 2 * s.view_rows}, DType::float32, 9000 + static_cast<std::uint64_t>(i), dev);
    d->set(fmt::format("base{}", i), base);
    d->set(fmt::format("view{}", i), i % 2 == 0 ? base.transpose(0, 1) : base.slice(1, 1, 2 * s.view_rows, 3));
  }
  return Value(d);
}

StateDictFixture describe(Value sd) {
  StateDictFixture f;
  f.state_dict = std::move(sd);
  std::unordered_set<const void*> seen;
  std::vector<Value> stack{f.state_dict};
  while (!stack.empty()) {
    const Value v = std::move(stack.back());
    stack.pop_back();
    if (v.is_tensor()) {
      ++f.tensors;
      const Storage& s = v.as_tensor().storage();
      if (s.defined() && seen.insert(s.identity()).second) {
        f.storages.push_back(s);
        f.bytes += s.nbytes();
      }
    } else if (v.kind() == Value::Kind::dict) {
      for (const auto& [k, item] : v.as_dict().entries()) stack.push_back(item);
    } else if (v.kind() == Value::Kind::list) {
      for (const Value& item : v.as_list().items) stack.push_back(item);
    }
  }
  return f;
}

}  // namespace

const char* layout_name(Layout l) noexcept {
  switch (l) {
    case Layout::large: return "large";
    case Layout::small: return "small";
    case Layout::transformer: return "transformer";
    case Layout::views: return "views";
  }
  return "?";
}

const StateDictFixture& fixture(Layout layout, Device device) {
  static std::mutex m;
  static std::map<std::pair<int, int>, StateDictFixture> cache;
  std::lock_guard lock(m);
  const auto key = std::make_pair(static_cast<int>(layout), device.is_cpu() ? -1 : device.index);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  const Scale s = scale();
  Value sd;
  switch (layout) {
    case Layout::large: sd = make_large(device, s); break;
    case Layout::small: sd = make_small(device, s); break;
    case Layout::transformer: sd = make_transformer(device, s); break;
    case Layout::views: sd = make_views(device, s); break;
  }
  return cache.emplace(key, describe(std::move(sd))).first->second;
}

}  // namespace stagekit::perf
