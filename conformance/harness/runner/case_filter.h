// Selection of cases by ID: glob patterns ('*' any run, '?' one character) separated by ':' or ',';
// a pattern starting with '-' excludes. No positive pattern means "everything".
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace stagekit::conformance {

[[nodiscard]] bool glob_match(std::string_view pattern, std::string_view text) noexcept;

class CaseFilter {
 public:
  explicit CaseFilter(std::string_view spec = {});
  [[nodiscard]] bool matches(std::string_view id) const;
  [[nodiscard]] const std::string& spec() const noexcept { return spec_; }

 private:
  std::string spec_;
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

}  // namespace stagekit::conformance
