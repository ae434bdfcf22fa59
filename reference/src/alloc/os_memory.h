// Internal: thin wrappers over the Linux memory calls the host allocators use, each turning a
// failure into a ResourceExhausted error that names the call, the size asked for, the limits in
// force and what to change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace stagekit::detail {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr std::size_t kHugePageSize = 2U << 20;

[[nodiscard]] std::size_t round_up(std::size_t n, std::size_t to) noexcept;
[[nodiscard]] std::string format_bytes(std::uint64_t n);  // "1.0 MiB (1048576 bytes)"
[[nodiscard]] std::string format_limit(std::uint64_t n);  // "unlimited" or format_bytes

// Anonymous private read-write mapping of `nbytes` (> 0); huge pages advised when large.
[[nodiscard]] void* map_anonymous(std::size_t nbytes, const char* purpose);
// A memfd of `nbytes` (> 0) with its space reserved (fallocate), mapped shared read-write.
struct SharedMapping {
  int fd = -1;
  void* data = nullptr;
};
[[nodiscard]] SharedMapping map_shared_memfd(std::size_t nbytes, const char* purpose);
void unmap(void* data, std::size_t nbytes) noexcept;
// mlock the range; on failure the range stays mapped and ResourceExhausted is thrown.
void lock_pages(void* data, std::size_t nbytes, const char* purpose);

// Current values from /proc/self/status ("VmLck") and /proc/meminfo ("MemAvailable"), in bytes.
[[nodiscard]] std::uint64_t locked_bytes_of_this_process() noexcept;
[[nodiscard]] std::uint64_t available_memory_bytes() noexcept;

}  // namespace stagekit::detail
