// describe_key() and describe_difference(): what a failure says about a key or two tensors.
#include <cstring>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "verify.h"

namespace stagekit::conformance {

std::string describe_key(const DictKey& key) {
  if (const auto* s = std::get_if<std::string>(&key)) return fmt::format("'{}' (str)", *s);
  return fmt::format("{} (int)", std::get<std::int64_t>(key));
}

std::string describe_difference(const Tensor& actual, const Tensor& expected) {
  if (!actual.defined() || !expected.defined()) {
    return fmt::format("got {}, expected {}", actual.defined() ? actual.describe() : "nothing",
                       expected.defined() ? expected.describe() : "nothing");
  }
  if (actual.dtype() != expected.dtype() ||
      !std::equal(actual.sizes().begin(), actual.sizes().end(), expected.sizes().begin(), expected.sizes().end())) {
    return fmt::format("got {}, expected {}", actual.describe(), expected.describe());
  }
  const std::vector<std::byte> a = actual.to_bytes();
  const std::vector<std::byte> b = expected.to_bytes();
  const std::size_t item = element_size(actual.dtype());
  std::size_t differing = 0;
  std::size_t first = 0;
  for (std::size_t i = 0; i * item < a.size() && i * item < b.size(); ++i) {
    if (std::memcmp(a.data() + i * item, b.data() + i * item, item) != 0) {
      if (differing++ == 0) first = i;
    }
  }
  // Called once a comparison found a difference: none now means the bytes changed since, under the
  // caller's eyes (a copy still running after stage() returned).
  if (differing == 0) {
    return fmt::format(
        "they differed when compared and no longer did a moment later ({}): something was still "
        "writing them",
        actual.describe());
  }
  // The first differing element's coordinates, row-major over the sizes.
  std::vector<std::int64_t> at(actual.sizes().size());
  std::size_t rest = first;
  for (std::size_t d = at.size(); d-- > 0;) {
    const auto n = static_cast<std::size_t>(actual.sizes()[d]);
    at[d] = static_cast<std::int64_t>(rest % n);
    rest /= n;
  }
  const std::span<const std::byte> got(a.data() + first * item, item);
  const std::span<const std::byte> want(b.data() + first * item, item);
  return fmt::format("{} of {} elements differ ({}); the first, at [{}], is {} instead of {}", differing,
                     a.size() / item, actual.describe(), fmt::join(at, ", "), decode_element(actual.dtype(), got),
                     decode_element(expected.dtype(), want));
}

}  // namespace stagekit::conformance
