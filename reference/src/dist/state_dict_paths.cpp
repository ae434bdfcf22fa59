#include "stagekit/dist/state_dict_paths.h"

#include <fmt/format.h>

#include <unordered_set>

#include "stagekit/core/error.h"

namespace stagekit::dist {
namespace {

bool is_branch(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::dict: return v.as_dict().size() > 0;
    case Value::Kind::list: return !v.as_list().items.empty();
    case Value::Kind::tuple: return !v.as_tuple().items().empty();
    default: return false;
  }
}

std::string key_string(const DictKey& key) {
  if (const auto* s = std::get_if<std::string>(&key)) return *s;
  return std::to_string(std::get<std::int64_t>(key));
}

void walk(const Value& v, ObjectPath& path, const std::function<void(const ObjectPath&, const Value&)>& visitor) {
  if (!is_branch(v)) {
    visitor(path, v);
    return;
  }
  if (v.kind() == Value::Kind::dict) {
    for (const auto& [key, child] : v.as_dict().entries()) {
      path.emplace_back(key_string(key));
      walk(child, path, visitor);
      path.pop_back();
    }
    return;
  }
  const std::vector<Value>& items = v.kind() == Value::Kind::list ? v.as_list().items : v.as_tuple().items();
  for (std::size_t i = 0; i < items.size(); ++i) {
    path.emplace_back(static_cast<std::int64_t>(i));
    walk(items[i], path, visitor);
    path.pop_back();
  }
}

Value new_container_for(const DictKey& next) {
  return std::holds_alternative<std::string>(next) ? Value::dict() : Value::list();
}

}  // namespace

std::string flat_key(const ObjectPath& path) {
  std::string out;
  for (const DictKey& k : path) {
    if (!out.empty()) out += '.';
    out += key_string(k);
  }
  return out;
}

void traverse_state_dict(const Value& state_dict, const std::function<void(const ObjectPath&, const Value&)>& visitor) {
  ObjectPath path;
  walk(state_dict, path, visitor);
}

FlatStateDict flatten_state_dict(const Value& state_dict) {
  FlatStateDict out;
  auto flat = std::make_shared<Dict>();
  std::unordered_set<std::string> seen;
  traverse_state_dict(state_dict, [&](const ObjectPath& path, const Value& leaf) {
    std::string key = flat_key(path);
    if (!seen.insert(key).second) throw InvalidArgument(fmt::format("duplicated flatten key {}", key), key);
    flat->set(key, leaf);
    out.mapping.emplace_back(std::move(key), path);
  });
  out.flat = Value(flat);
  return out;
}

void set_element(Value& root, const ObjectPath& path, const Value& value) {
  check_argument(!path.empty(), "set_element: an empty path");
  if (root.is_none()) root = new_container_for(path.front());
  Value node = root;
  for (std::size_t i = 0; i < path.size(); ++i) {
    const DictKey& key = path[i];
    const bool last = i + 1 == path.size();
    const std::string where = flat_key(ObjectPath(path.begin(), path.begin() + static_cast<std::ptrdiff_t>(i) + 1));
    Value next = last ? value : Value();
    if (const auto* name = std::get_if<std::string>(&key)) {
      if (node.kind() != Value::Kind::dict) {
        throw InvalidArgument(fmt::format("set_element: a string key under a {}", value_kind_name(node.kind())), where);
      }
      Dict& d = node.as_dict();
      if (!last) next = d.contains(*name) && !d.at(*name).is_none() ? d.at(*name) : new_container_for(path[i + 1]);
      d.set(*name, next);
    } else {
      if (node.kind() != Value::Kind::list) {
        throw InvalidArgument(fmt::format("set_element: an index under a {}", value_kind_name(node.kind())), where);
      }
      const std::int64_t index = std::get<std::int64_t>(key);
      check_argument(index >= 0, "set_element: a negative index at " + where);
      std::vector<Value>& items = node.as_list().items;
      if (items.size() <= static_cast<std::size_t>(index)) items.resize(static_cast<std::size_t>(index) + 1);
      Value& slot = items[static_cast<std::size_t>(index)];
      if (!last) next = slot.is_none() ? new_container_for(path[i + 1]) : slot;
      slot = next;
    }
    node = next;
  }
}

Value unflatten_state_dict(const Value& flat, const FlattenMapping& mapping) {
  check_argument(flat.kind() == Value::Kind::dict, "unflatten_state_dict: the flat state dict is not a dict");
  Value root;
  const Dict& d = flat.as_dict();
  for (const auto& [key, path] : mapping) {
    if (!d.contains(key)) throw InvalidArgument("unflatten_state_dict: the mapping names a missing flat key", key);
    set_element(root, path, d.at(key));
  }
  return root.is_none() ? Value::dict() : root;
}

}  // namespace stagekit::dist
