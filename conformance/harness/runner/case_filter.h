// Selection of cases by ID: glob patterns ('*' any run, '?' one character) separated by ':' or ',';
// a pattern starting with '-' excludes. No positive pattern means "everything". IDs follow the
// grammar of stagekit/conformance/case_id.h, so `stager.dtype.*` selects every dtype case,
// `*.cuda.*` every CUDA case and `*.ws4` every case on four ranks ('*' also spans dots).
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
  [[nodiscard]] const std::vector<std::string>& includes() const noexcept { return include_; }
  [[nodiscard]] const std::vector<std::string>& excludes() const noexcept { return exclude_; }

 private:
  std::string spec_;
  std::vector<std::string> include_;
  std::vector<std::string> exclude_;
};

}  // namespace stagekit::conformance
