#include "tensor_elements.h"

namespace stagekit::detail {

__extension__ using Int128 = __int128;

std::optional<Extent> addressed_extent(std::span<const std::int64_t> sizes, std::span<const std::int64_t> strides,
                                       std::int64_t offset, std::size_t item) {
  Extent e;
  Int128 numel = 1;
  Int128 last = offset;
  for (std::size_t i = 0; i < sizes.size() && i < strides.size(); ++i) {
    numel *= sizes[i];
    if (sizes[i] > 0) last += static_cast<Int128>(sizes[i] - 1) * strides[i];
  }
  if (numel > INT64_MAX) return std::nullopt;
  e.numel = static_cast<std::int64_t>(numel);
  if (e.numel == 0) return e;
  const Int128 begin = static_cast<Int128>(offset) * item;
  const Int128 end = (last + 1) * static_cast<Int128>(item);
  if (end > static_cast<Int128>(SIZE_MAX) || begin < 0) return std::nullopt;
  e.begin_byte = static_cast<std::size_t>(begin);
  e.end_byte = static_cast<std::size_t>(end);
  return e;
}

}  // namespace stagekit::detail
