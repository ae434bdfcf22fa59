// What a caller's state dict is, so that a case can tell whether a stager left it as it was: not
// the bytes of its tensors (storage_digests() in fixtures.h), the tree. Value's containers are
// shared handles, so a stager handed `const Value&` can still rewrite the caller's dicts and lists
// (as_dict() returns a mutable Dict); this catches it.
//
// source_tree() lists, in walk order, every node reached with its path: its kind and identity, a
// container's type name, keys or length, a scalar's value, and a tensor's identity, storage,
// dtype, layout, parameter and requires-grad flags and attribute names (its attributes are walked
// too); a node reached again is listed by identity only. first_tree_change() compares the tree now
// with such a list.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "stagekit/core/value.h"

namespace stagekit::conformance {

struct TreeNode {
  std::string path;
  std::string description;
};

[[nodiscard]] std::vector<TreeNode> source_tree(const Value& v);

// Nothing when `v` is still what `before` lists; else the path of the first difference and what
// differs ("before the stage: ...; after it: ...").
[[nodiscard]] std::optional<std::pair<std::string, std::string>> first_tree_change(const Value& v,
                                                                                   const std::vector<TreeNode>& before);

}  // namespace stagekit::conformance
