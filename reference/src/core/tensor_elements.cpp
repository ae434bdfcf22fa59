#include "tensor_elements.h"

#include <algorithm>

namespace stagekit::detail {

__extension__ using Int128 = __int128;

std::optional<Extent> addressed_extent(std::span<const std::int64_t> sizes, std::span<const std::int64_t> strides,
                                       std::int64_t offset, std::size_t item) {
  const std::size_t dims = std::min(sizes.size(), strides.size());
  Extent e;
  // An empty tensor addresses nothing, whatever its other sizes and strides say.
  if (std::any_of(sizes.begin(), sizes.begin() + static_cast<std::ptrdiff_t>(dims),
                  [](std::int64_t s) { return s == 0; })) {
    return e;
  }
  // Every step is overflow-checked: layouts come from untrusted input (replica files, plugins), and
  // enough large dimensions overflow even 128 bits.
  Int128 numel = 1;
  Int128 last = offset;
  for (std::size_t i = 0; i < dims; ++i) {
    if (__builtin_mul_overflow(numel, static_cast<Int128>(sizes[i]), &numel)) return std::nullopt;
    if (numel > INT64_MAX || numel < INT64_MIN) return std::nullopt;
    if (sizes[i] > 0) {
      Int128 reach = 0;
      if (__builtin_mul_overflow(static_cast<Int128>(sizes[i] - 1), static_cast<Int128>(strides[i]), &reach) ||
          __builtin_add_overflow(last, reach, &last)) {
        return std::nullopt;
      }
    }
  }
  e.numel = static_cast<std::int64_t>(numel);
  Int128 begin = 0;
  Int128 end = 0;
  if (__builtin_mul_overflow(static_cast<Int128>(offset), static_cast<Int128>(item), &begin) ||
      __builtin_add_overflow(last, Int128{1}, &end) || __builtin_mul_overflow(end, static_cast<Int128>(item), &end)) {
    return std::nullopt;
  }
  if (end > static_cast<Int128>(SIZE_MAX) || begin < 0) return std::nullopt;
  e.begin_byte = static_cast<std::size_t>(begin);
  e.end_byte = static_cast<std::size_t>(end);
  return e;
}

}  // namespace stagekit::detail
