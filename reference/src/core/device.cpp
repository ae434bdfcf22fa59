#include "stagekit/core/device.h"

#include <string>

namespace stagekit {

std::string Device::str() const {
  if (is_meta()) return "meta";
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

std::string_view memory_kind_name(MemoryKind kind) noexcept {
  switch (kind) {
    case MemoryKind::pageable: return "pageable";
    case MemoryKind::pinned: return "pinned";
    case MemoryKind::shared: return "shared";
    case MemoryKind::pinned_shared: return "pinned_shared";
    case MemoryKind::device: return "device";
  }
  return "unknown";
}

}  // namespace stagekit
