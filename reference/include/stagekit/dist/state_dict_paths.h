// stagekit/dist/state_dict_paths.h — PyTorch's state-dict path helpers (_traverse_state_dict,
// _flatten_state_dict, _set_element, _unflatten_state_dict; spec B.6.13).
//
// An ObjectPath is the sequence of keys from the root to a leaf: a dict level contributes its key as
// a string (an integer key i becomes "i", as upstream's str(key)), a list or tuple level the integer
// index. Everything that is not a dict, list or tuple is a leaf (tensors, DTensors, objects, scalars),
// and so is an empty container: upstream visits nothing there, so its flatten/unflatten round trip
// loses empty dicts and lists; here they survive it.
//   * traverse_state_dict visits the leaves depth-first, in order;
//   * flatten_state_dict maps each leaf to the key "a.b.0" (segments joined by '.') and remembers its
//     path; two leaves with the same flat key ("a.b" under {"a": {"b": x}, "a.b": y}) raise
//     InvalidArgument "duplicated flatten key a.b" and flatten nothing;
//   * set_element walks `root` along `path`, creating a dict where the next key is a string and a
//     list where it is an index (lists grow with None as needed), and sets the value there; it
//     raises InvalidArgument naming the path when a level exists with another kind (a tuple cannot
//     be written into);
//   * unflatten_state_dict rebuilds the nested structure from a flat dict and its mapping (leaves
//     shared, not copied): flatten then unflatten gives the original structure, tuples as lists.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "stagekit/core/value.h"

namespace stagekit::dist {

using ObjectPath = std::vector<DictKey>;
using FlattenMapping = std::vector<std::pair<std::string, ObjectPath>>;  // flat key -> path, in order

struct FlatStateDict {
  Value flat;  // a dict: flat key -> leaf
  FlattenMapping mapping;
};

void traverse_state_dict(const Value& state_dict, const std::function<void(const ObjectPath&, const Value&)>& visitor);
[[nodiscard]] FlatStateDict flatten_state_dict(const Value& state_dict);
void set_element(Value& root, const ObjectPath& path, const Value& value);
[[nodiscard]] Value unflatten_state_dict(const Value& flat, const FlattenMapping& mapping);

// "a.b.0": the segments of `path` joined by '.'.
[[nodiscard]] std::string flat_key(const ObjectPath& path);

}  // namespace stagekit::dist
