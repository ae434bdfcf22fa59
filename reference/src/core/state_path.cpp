#include "stagekit/core/state_path.h"

namespace stagekit {

void PathStack::push_key(const DictKey& key) {
  if (const auto* s = std::get_if<std::string>(&key)) {
    segments_.push_back({false, *s, 0});
  } else {
    segments_.push_back({true, {}, std::get<std::int64_t>(key)});
  }
}

void PathStack::push_name(std::string_view name) { segments_.push_back({false, name, 0}); }

void PathStack::push_index(std::size_t index) { segments_.push_back({true, {}, static_cast<std::int64_t>(index)}); }

std::string PathStack::str(std::size_t depth) const {
  if (depth == 0 || segments_.empty()) return "<root>";
  std::string out;
  for (std::size_t i = 0; i < depth && i < segments_.size(); ++i) {
    const Segment& s = segments_[i];
    if (s.is_index) {
      out += '[';
      out += std::to_string(s.index);
      out += ']';
    } else {
      if (!out.empty()) out += '.';
      out += s.name;
    }
  }
  return out;
}

}  // namespace stagekit
