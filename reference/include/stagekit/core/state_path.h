// stagekit/core/state_path.h — human-readable paths into a state dict ("recursive.type.tensor1").
//
// Format: dict string keys, object fields and tensor attributes are joined with '.'; list and tuple
// indices and integer dict keys are written "[i]". The root itself is "<root>".
// PathStack keeps the segments cheaply during a traversal and only builds the string on demand:
// a segment views the key or name it was given, which must outlive the segment (a traversal pushes
// keys of the tree it walks, so they do).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/core/value.h"

namespace stagekit {

class PathStack {
 public:
  void push_key(const DictKey& key);
  void push_name(std::string_view name);  // object field or tensor attribute
  void push_index(std::size_t index);
  void pop() noexcept { segments_.pop_back(); }
  [[nodiscard]] std::string str() const { return str(segments_.size()); }
  // The path made of the first `depth` segments.
  [[nodiscard]] std::string str(std::size_t depth) const;
  [[nodiscard]] std::size_t depth() const noexcept { return segments_.size(); }

 private:
  struct Segment {
    bool is_index;
    std::string_view name;  // views a key/field name that outlives the traversal
    std::int64_t index;
  };
  std::vector<Segment> segments_;
};

// RAII push/pop of one segment.
class PathScope {
 public:
  PathScope(PathStack& stack, const DictKey& key) : stack_(stack) { stack_.push_key(key); }
  PathScope(PathStack& stack, std::string_view name) : stack_(stack) { stack_.push_name(name); }
  PathScope(PathStack& stack, std::size_t index) : stack_(stack) { stack_.push_index(index); }
  ~PathScope() { stack_.pop(); }
  PathScope(const PathScope&) = delete;
  PathScope& operator=(const PathScope&) = delete;

 private:
  PathStack& stack_;
};

}  // namespace stagekit
