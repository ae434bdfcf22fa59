// stagekit/core/device.h — where a storage lives (cpu, cuda:N, or meta) and how host memory is held.
//
// The meta device, as PyTorch's, holds sizes, strides and dtypes but no data: a meta storage has
// nbytes() and no memory (data() is null). Every operation that reads or writes elements refuses a
// meta tensor (InvalidArgument naming it) except the fills, which do nothing there, and to(meta).
//
// MemoryKind describes the host memory behind a CPU storage: pageable (ordinary memory), pinned
// (page-locked: mlock, or registered with the CUDA driver when a GPU is present), shared (a memfd
// mapping another process can map), pinned_shared (both). Device (and meta) storages have
// MemoryKind::device.
// A zero-byte storage is never pinned: its kind is pageable or shared.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace stagekit {

enum class DeviceType : std::uint8_t { cpu, cuda, meta };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  [[nodiscard]] static constexpr Device cpu() noexcept { return {DeviceType::cpu, 0}; }
  [[nodiscard]] static constexpr Device cuda(int index = 0) noexcept { return {DeviceType::cuda, index}; }
  [[nodiscard]] static constexpr Device meta() noexcept { return {DeviceType::meta, 0}; }
  [[nodiscard]] constexpr bool is_cpu() const noexcept { return type == DeviceType::cpu; }
  [[nodiscard]] constexpr bool is_cuda() const noexcept { return type == DeviceType::cuda; }
  [[nodiscard]] constexpr bool is_meta() const noexcept { return type == DeviceType::meta; }
  [[nodiscard]] std::string str() const;  // "cpu", "cuda:N" or "meta"

  friend constexpr bool operator==(const Device&, const Device&) = default;
};

enum class MemoryKind : std::uint8_t { pageable, pinned, shared, pinned_shared, device };

[[nodiscard]] std::string_view memory_kind_name(MemoryKind kind) noexcept;
[[nodiscard]] constexpr bool is_pinned_kind(MemoryKind k) noexcept {
  return k == MemoryKind::pinned || k == MemoryKind::pinned_shared;
}
[[nodiscard]] constexpr bool is_shared_kind(MemoryKind k) noexcept {
  return k == MemoryKind::shared || k == MemoryKind::pinned_shared;
}
[[nodiscard]] constexpr MemoryKind host_memory_kind(bool pinned, bool shared) noexcept {
  if (pinned && shared) return MemoryKind::pinned_shared;
  if (pinned) return MemoryKind::pinned;
  if (shared) return MemoryKind::shared;
  return MemoryKind::pageable;
}

}  // namespace stagekit
