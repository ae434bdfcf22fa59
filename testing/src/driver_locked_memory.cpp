// The CUDA driver's view of page-locked host memory (see memory_probe.h): memory pinned with
// cudaHostAlloc or cudaHostRegister is not mlock()ed, so neither VmLck nor the "lo" flag of smaps
// shows it; only the driver knows it (cudaPointerGetAttributes).
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include <fmt/format.h>

#include "stagekit/core/cuda.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::probe {
namespace {

constexpr std::size_t kMaxPagesAsked = 4096;    // per range: a larger range is sampled evenly
constexpr std::uint64_t kPresent = 1ULL << 63;  // /proc/self/pagemap: the page is in memory

std::uintptr_t page_size() {
  static const auto size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  return size;
}

bool registered(std::uintptr_t address) {
  return cuda::pointer_kind(reinterpret_cast<const void*>(address)) == cuda::PointerKind::registered_host;
}

// Mappings the driver's pinned memory can lie in: readable, and not one of the driver's own device
// nodes or the kernel's special areas.
bool may_hold_pinned_pages(const Mapping& m) {
  if (m.permissions.empty() || m.permissions[0] != 'r') return false;
  if (m.path.rfind("/dev/nvidia", 0) == 0) return false;
  return m.path != "[vsyscall]" && m.path != "[vvar]" && m.path != "[vdso]";
}

}  // namespace

Verdict driver_page_locked(const void* p, std::size_t n) {
  if (n == 0) return {true, "empty range"};
  if (!cuda::available()) return {false, "no usable CUDA device: the driver knows no page-locked memory"};
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t last = begin + n - 1;
  const std::uintptr_t page = page_size();
  const std::uintptr_t first_page = begin / page * page;
  const std::uintptr_t pages = (last / page * page - first_page) / page + 1;
  const std::uintptr_t step = std::max<std::uintptr_t>(1, pages / kMaxPagesAsked);
  for (std::uintptr_t i = 0; i < pages; i += step) {
    const std::uintptr_t address = std::max(begin, first_page + i * page);
    if (!registered(address)) {
      return {false, fmt::format("byte {} of [{}, +{}) is not registered with the CUDA driver "
                                 "(cudaPointerGetAttributes)",
                                 address - begin, p, n)};
    }
  }
  if (!registered(last)) {
    return {false, fmt::format("the last byte of [{}, +{}) is not registered with the CUDA driver "
                               "(cudaPointerGetAttributes)",
                               p, n)};
  }
  return {true, step == 1 ? "every page registered with the CUDA driver"
                          : fmt::format("registered with the CUDA driver (every {}th page asked)", step)};
}

std::uint64_t driver_locked_bytes() {
  if (!cuda::available()) return 0;
  settle_cuda_driver();
  const int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return 0;
  const std::uintptr_t page = page_size();
  std::uint64_t total = 0;
  std::vector<std::uint64_t> entries(kMaxPagesAsked);
  const MemoryMap map = MemoryMap::snapshot();
  for (const Mapping& m : map.mappings()) {
    if (!may_hold_pinned_pages(m)) continue;
    for (std::uintptr_t chunk = m.start; chunk < m.end; chunk += kMaxPagesAsked * page) {
      const std::size_t count = std::min<std::size_t>(kMaxPagesAsked, (m.end - chunk) / page);
      const auto offset = static_cast<off_t>(chunk / page * sizeof(std::uint64_t));
      const ssize_t got = pread(pagemap, entries.data(), count * sizeof(std::uint64_t), offset);
      if (got <= 0) break;
      const std::size_t read = static_cast<std::size_t>(got) / sizeof(std::uint64_t);
      for (std::size_t i = 0; i < read; ++i) {
        // Pinned pages are always in memory: only those are asked about.
        if ((entries[i] & kPresent) != 0 && registered(chunk + i * page)) total += page;
      }
    }
  }
  close(pagemap);
  return total;
}

}  // namespace stagekit::probe
