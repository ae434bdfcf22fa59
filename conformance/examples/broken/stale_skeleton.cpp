// stale_skeleton.cpp — BROKEN: each stage stages the dict as it is now. The staged structure is
// kept from the first stage of a dict with the same top-level keys, and later stages only refresh
// its tensors ("a model's state dict keeps its structure from one checkpoint to the next"): every
// tensor is staged as it is now, at the path it had the first time, but a step counter that moved,
// optimizer state that appeared after the first step, a list that grew or a string that changed
// keep their first values. Mirrors the Python route's stagekit_torch_examples.broken.stale_skeleton.
#include <map>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class StaleSkeleton final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

  Value stage(const Value& state_dict) override {
    Value staged = MinimalStager::stage(state_dict);  // right, but only its tensors are used again
    if (state_dict.kind() != Value::Kind::dict) return staged;
    std::vector<std::string> keys;
    for (const auto& [key, value] : state_dict.as_dict().entries()) keys.push_back(dict_key_str(key));
    auto [it, first] = skeletons_.emplace(std::move(keys), staged);
    if (first) return staged;
    std::unordered_map<const void*, Value> memo;
    return refresh_tensors(it->second, staged, memo);
  }
  void close() override {
    skeletons_.clear();
    MinimalStager::close();
  }

 private:
  // `skeleton`'s structure and non-tensor leaves, with the tensors `fresh` has at the same paths (a
  // node reached twice is refreshed once).
  Value refresh_tensors(const Value& skeleton, const Value& fresh, std::unordered_map<const void*, Value>& memo) {
    if (auto it = memo.find(skeleton.identity()); it != memo.end()) return it->second;
    Value out = skeleton;  // scalars, strings, sets, and anything whose shape changed: as first staged
    switch (skeleton.kind()) {
      case Value::Kind::tensor:
        if (fresh.is_tensor()) out = fresh;
        break;
      case Value::Kind::dict:
        if (fresh.kind() == Value::Kind::dict) {
          std::vector<Value> values;
          for (const auto& [key, value] : skeleton.as_dict().entries())
            values.push_back(fresh.as_dict().contains(key) ? refresh_tensors(value, fresh.as_dict().at(key), memo)
                                                           : value);
          out = rebuild_dict(skeleton.as_dict(), std::move(values));
        }
        break;
      case Value::Kind::list:
        if (fresh.kind() == Value::Kind::list) {
          std::vector<Value> items;
          const auto& now = fresh.as_list().items;
          for (std::size_t i = 0; i < skeleton.as_list().items.size(); ++i) {
            const Value& was = skeleton.as_list().items[i];
            items.push_back(i < now.size() ? refresh_tensors(was, now[i], memo) : was);
          }
          out = Value::list(std::move(items));
        }
        break;
      case Value::Kind::tuple:
        if (fresh.kind() == Value::Kind::tuple &&
            fresh.as_tuple().items().size() == skeleton.as_tuple().items().size()) {
          std::vector<Value> items;
          for (std::size_t i = 0; i < skeleton.as_tuple().items().size(); ++i)
            items.push_back(refresh_tensors(skeleton.as_tuple().items()[i], fresh.as_tuple().items()[i], memo));
          out = rebuild_tuple(skeleton.as_tuple(), std::move(items));
        }
        break;
      case Value::Kind::object:
        if (fresh.kind() == Value::Kind::object &&
            fresh.as_object().fields().size() == skeleton.as_object().fields().size()) {
          Fields fields;
          for (std::size_t i = 0; i < skeleton.as_object().fields().size(); ++i) {
            const auto& [name, was] = skeleton.as_object().fields()[i];
            fields.emplace_back(name, refresh_tensors(was, fresh.as_object().fields()[i].second, memo));
          }
          out = rebuild_object(skeleton.as_object(), std::move(fields));
        }
        break;
      default: break;
    }
    if (skeleton.identity() != nullptr) memo.emplace(skeleton.identity(), out);
    return out;
  }

  std::map<std::vector<std::string>, Value> skeletons_;  // top-level keys -> the first result
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<StaleSkeleton>("example-broken-stale-skeleton");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
