// Internal: element iteration over strided host tensors and the byte extent a layout addresses.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "stagekit/core/tensor.h"

namespace stagekit::detail {

struct Extent {
  std::int64_t numel = 0;
  std::size_t begin_byte = 0;  // storage_offset * item
  std::size_t end_byte = 0;    // one past the last addressed byte
};

// nullopt when the computation overflows.
[[nodiscard]] std::optional<Extent> addressed_extent(std::span<const std::int64_t> sizes,
                                                     std::span<const std::int64_t> strides, std::int64_t offset,
                                                     std::size_t item);

// Calls fn(std::byte* element) for every element of a CPU tensor, in row-major logical order.
template <class Fn>
void for_each_element(const Tensor& t, Fn&& fn) {
  const std::int64_t n = t.numel();
  if (n == 0) return;
  auto* base = static_cast<std::byte*>(t.storage().data());
  const std::size_t item = t.element_size();
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  const std::size_t nd = sizes.size();
  std::vector<std::int64_t> idx(nd, 0);
  std::int64_t offset = t.storage_offset();
  for (std::int64_t k = 0; k < n; ++k) {
    fn(base + static_cast<std::size_t>(offset) * item);
    for (std::size_t d = nd; d-- > 0;) {
      if (++idx[d] < sizes[d]) {
        offset += strides[d];
        break;
      }
      offset -= strides[d] * (sizes[d] - 1);
      idx[d] = 0;
    }
  }
}

}  // namespace stagekit::detail
