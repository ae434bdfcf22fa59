// source_tree() and first_tree_change() (source_tree.h).
#include "source_tree.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <unordered_set>

#include "stagekit/core/dtensor.h"

namespace stagekit::conformance {
namespace {

std::string child(const std::string& path, std::string_view part) {
  return path.empty() ? std::string(part) : fmt::format("{}.{}", path, part);
}

std::string item(const std::string& path, std::size_t i) { return fmt::format("{}[{}]", path, i); }

class Walk {
 public:
  std::vector<TreeNode> nodes;

  void visit(const Value& v, const std::string& path) {
    const std::string where = path.empty() ? "<root>" : path;
    const void* id = v.identity();
    if (id != nullptr && !seen_.insert(id).second) {
      nodes.push_back({where, fmt::format("the node met earlier (object {})", id)});
      return;
    }
    switch (v.kind()) {
      case Value::Kind::none: return leaf(where, "None");
      case Value::Kind::boolean: return leaf(where, v.as_bool() ? "True" : "False");
      case Value::Kind::integer: return leaf(where, fmt::format("int {}", v.as_int()));
      case Value::Kind::floating:
        return leaf(where,
                    fmt::format("float {} (bits {:016x})", v.as_double(), std::bit_cast<std::uint64_t>(v.as_double())));
      case Value::Kind::string: return leaf(where, fmt::format("str '{}'", v.as_string()));
      case Value::Kind::bytes: return leaf(where, fmt::format("bytes of length {}", v.as_bytes().data.size()));
      case Value::Kind::tensor: return tensor(v.as_tensor(), where, path);
      case Value::Kind::list: {
        const auto& items = v.as_list().items;
        leaf(where, fmt::format("list of {} item(s) (object {})", items.size(), id));
        for (std::size_t i = 0; i < items.size(); ++i) visit(items[i], item(path, i));
        return;
      }
      case Value::Kind::tuple: {
        const Tuple& t = v.as_tuple();
        leaf(where,
             fmt::format("{} of {} item(s) (object {})", t.is_named() ? t.type_name() : "tuple", t.items().size(), id));
        for (std::size_t i = 0; i < t.items().size(); ++i) visit(t.items()[i], item(path, i));
        return;
      }
      case Value::Kind::dict: {
        const Dict& d = v.as_dict();
        std::vector<std::string> keys;
        for (const auto& [k, value] : d.entries()) {
          keys.push_back(std::holds_alternative<std::string>(k) ? fmt::format("'{}'", dict_key_str(k))
                                                                : dict_key_str(k));
        }
        leaf(where, fmt::format("{} with keys [{}] (object {})", d.type_name().empty() ? "dict" : d.type_name(),
                                fmt::join(keys, ", "), id));
        for (const auto& [k, value] : d.entries()) visit(value, child(path, dict_key_str(k)));
        return;
      }
      case Value::Kind::object: {
        const Object& o = v.as_object();
        leaf(where, fmt::format("{} object with {} field(s) (object {})", o.type_name(), o.fields().size(), id));
        for (const auto& [name, value] : o.fields()) visit(value, child(path, name));
        return;
      }
      case Value::Kind::set:
        return leaf(where, fmt::format("set of {} item(s) (object {})", v.as_set().items().size(), id));
      case Value::Kind::dtensor: {
        const auto& d = v.as_dtensor_node();
        leaf(where, fmt::format("DTensor (object {}) over local tensor {}", id, d->local().identity()));
        return;
      }
      case Value::Kind::sharded_tensor: return leaf(where, fmt::format("ShardedTensor (object {})", id));
      case Value::Kind::opaque: return leaf(where, fmt::format("opaque leaf (object {})", id));
    }
  }

 private:
  void leaf(const std::string& where, std::string description) { nodes.push_back({where, std::move(description)}); }

  void tensor(const Tensor& t, const std::string& where, const std::string& path) {
    std::vector<std::string> attrs;
    for (const auto& [name, value] : t.attrs()) attrs.push_back(name);
    leaf(where, fmt::format("{} {}{} strides {} offset {} on {}{}{} (object {}, storage {})",
                            t.is_parameter() ? "parameter" : "tensor", dtype_name(t.dtype()), t.sizes(), t.strides(),
                            t.storage_offset(), t.device().str(), t.requires_grad() ? " that requires grad" : "",
                            attrs.empty() ? "" : fmt::format(" with attributes {}", fmt::join(attrs, ", ")),
                            t.identity(), t.storage().identity()));
    for (const auto& [name, value] : t.attrs()) visit(value, child(path, name));
  }

  std::unordered_set<const void*> seen_;
};

}  // namespace

std::vector<TreeNode> source_tree(const Value& v) {
  Walk walk;
  walk.visit(v, "");
  return std::move(walk.nodes);
}

std::optional<std::pair<std::string, std::string>> first_tree_change(const Value& v,
                                                                     const std::vector<TreeNode>& before) {
  const std::vector<TreeNode> now = source_tree(v);
  const std::size_t common = std::min(now.size(), before.size());
  for (std::size_t i = 0; i < common; ++i) {
    if (now[i].path != before[i].path || now[i].description != before[i].description) {
      return std::pair{before[i].path, fmt::format("before the stage: {} = {}; after it: {} = {}", before[i].path,
                                                   before[i].description, now[i].path, now[i].description)};
    }
  }
  if (now.size() < before.size()) {
    const TreeNode& gone = before[common];
    return std::pair{gone.path, fmt::format("{} = {} was in the state dict before the stage and is gone", gone.path,
                                            gone.description)};
  }
  if (now.size() > before.size()) {
    const TreeNode& added = now[common];
    return std::pair{added.path,
                     fmt::format("{} = {} was added to the state dict by the stage", added.path, added.description)};
  }
  return std::nullopt;
}

}  // namespace stagekit::conformance
