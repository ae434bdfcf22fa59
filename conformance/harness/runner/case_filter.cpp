#include "case_filter.h"

#include <algorithm>

namespace stagekit::conformance {

bool glob_match(std::string_view pattern, std::string_view text) noexcept {
  std::size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && (pattern[p] == '?' || pattern[p] == text[t])) {
      ++p;
      ++t;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

CaseFilter::CaseFilter(std::string_view spec) : spec_(spec) {
  std::size_t start = 0;
  while (start <= spec.size()) {
    const std::size_t end = spec.find_first_of(":,", start);
    std::string_view item = spec.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    if (!item.empty()) {
      if (item.front() == '-') {
        exclude_.emplace_back(item.substr(1));
      } else {
        include_.emplace_back(item);
      }
    }
    if (end == std::string_view::npos) break;
    start = end + 1;
  }
}

bool CaseFilter::matches(std::string_view id) const {
  auto hit = [&](const std::string& pattern) { return glob_match(pattern, id); };
  if (std::any_of(exclude_.begin(), exclude_.end(), hit)) return false;
  return include_.empty() || std::any_of(include_.begin(), include_.end(), hit);
}

}  // namespace stagekit::conformance
