// The default allocators of every memory kind, the per-kind registry and the live-byte counters.
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <cstdint>
#include <mutex>
#include <new>

#include <fmt/format.h>

#include "os_memory.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit {
namespace {

using detail::format_bytes;

constexpr std::size_t kMallocLimit = std::size_t{1} << 20;  // below this, pageable memory comes from malloc
constexpr std::size_t kAlignment = 64;

std::array<std::atomic<std::uint64_t>, 5> g_live_bytes{};

void count_alloc(MemoryKind kind, std::size_t n) noexcept {
  g_live_bytes[static_cast<std::size_t>(kind)].fetch_add(n, std::memory_order_relaxed);
}
void count_free(MemoryKind kind, std::size_t n) noexcept {
  g_live_bytes[static_cast<std::size_t>(kind)].fetch_sub(n, std::memory_order_relaxed);
}

// Everything a release needs, for allocations that cannot encode it in the context pointer alone.
struct MappingContext {
  std::size_t nbytes = 0;
  int fd = -1;
  bool cuda_registered = false;
  MemoryKind kind = MemoryKind::shared;
};

// ---- pageable ------------------------------------------------------------------------------------
class PageableAllocator final : public Allocator {
 public:
  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, Device::cpu(), MemoryKind::pageable, nullptr, nullptr);
    auto* ctx = reinterpret_cast<void*>(static_cast<std::uintptr_t>(nbytes));
    if (nbytes < kMallocLimit) {
      void* p = std::aligned_alloc(kAlignment, detail::round_up(nbytes, kAlignment));
      if (p == nullptr) {
        throw ResourceExhausted(fmt::format("cannot allocate {} of pageable host memory: malloc failed",
                                            format_bytes(nbytes)));
      }
      count_alloc(MemoryKind::pageable, nbytes);
      return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pageable, ctx, &release_malloc);
    }
    void* p = detail::map_anonymous(nbytes, "pageable host memory");
    count_alloc(MemoryKind::pageable, nbytes);
    return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pageable, ctx, &release_mapping);
  }
  MemoryKind kind() const noexcept override { return MemoryKind::pageable; }

 private:
  static void release_malloc(void* data, void* ctx) noexcept {
    std::free(data);
    count_free(MemoryKind::pageable, reinterpret_cast<std::uintptr_t>(ctx));
  }
  static void release_mapping(void* data, void* ctx) noexcept {
    const auto n = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(ctx));
    detail::unmap(data, n);
    count_free(MemoryKind::pageable, n);
  }
};

// ---- pinned (page-locked, private) ---------------------------------------------------------------
class PinnedAllocator final : public Allocator {
 public:
  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, Device::cpu(), MemoryKind::pageable, nullptr, nullptr);
    auto* ctx = reinterpret_cast<void*>(static_cast<std::uintptr_t>(nbytes));
    if (cuda::available()) {
      void* p = cuda::host_alloc(nbytes);
      count_alloc(MemoryKind::pinned, nbytes);
      return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pinned, ctx, &release_cuda);
    }
    void* p = detail::map_anonymous(nbytes, "pinned host memory");
    try {
      detail::lock_pages(p, nbytes, "pinned host memory");
    } catch (...) {
      detail::unmap(p, nbytes);
      throw;
    }
    count_alloc(MemoryKind::pinned, nbytes);
    return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pinned, ctx, &release_mapping);
  }
  MemoryKind kind() const noexcept override { return MemoryKind::pinned; }

 private:
  static void release_cuda(void* data, void* ctx) noexcept {
    cuda::host_free(data);
    count_free(MemoryKind::pinned, reinterpret_cast<std::uintptr_t>(ctx));
  }
  static void release_mapping(void* data, void* ctx) noexcept {
    const auto n = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(ctx));
    detail::unmap(data, n);  // munmap also unlocks
    count_free(MemoryKind::pinned, n);
  }
};

// ---- shared and pinned+shared (memfd mappings) ---------------------------------------------------
class SharedAllocator final : public Allocator {
 public:
  explicit SharedAllocator(bool pinned) : pinned_(pinned) {}

  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, Device::cpu(), MemoryKind::shared, nullptr, nullptr);
    const MemoryKind k = kind();
    const char* purpose = pinned_ ? "pinned shared memory" : "shared memory";
    const auto mapping = detail::map_shared_memfd(nbytes, purpose);
    auto* ctx = new MappingContext{nbytes, mapping.fd, false, k};
    try {
      if (pinned_) {
        if (cuda::available()) {
          cuda::host_register(mapping.data, nbytes);
          ctx->cuda_registered = true;
        } else {
          detail::lock_pages(mapping.data, nbytes, purpose);
        }
      }
    } catch (...) {
      release(mapping.data, ctx);
      throw;
    }
    count_alloc(k, nbytes);
    return DataPtr(mapping.data, nbytes, Device::cpu(), k, ctx, &release_counted, mapping.fd, 0);
  }
  MemoryKind kind() const noexcept override { return pinned_ ? MemoryKind::pinned_shared : MemoryKind::shared; }

 private:
  static void release(void* data, void* context) noexcept {
    auto* ctx = static_cast<MappingContext*>(context);
    if (ctx->cuda_registered) cuda::host_unregister(data);
    detail::unmap(data, ctx->nbytes);
    if (ctx->fd >= 0) close(ctx->fd);
    delete ctx;
  }
  static void release_counted(void* data, void* context) noexcept {
    auto* ctx = static_cast<MappingContext*>(context);
    count_free(ctx->kind, ctx->nbytes);
    release(data, context);
  }
  bool pinned_;
};

// ---- CUDA device memory --------------------------------------------------------------------------
class CudaDeviceAllocator final : public Allocator {
 public:
  explicit CudaDeviceAllocator(int index) : index_(index) {}
  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, device(), MemoryKind::device, nullptr, nullptr);
    void* p = cuda::device_malloc(index_, nbytes);
    count_alloc(MemoryKind::device, nbytes);
    return DataPtr(p, nbytes, device(), MemoryKind::device, reinterpret_cast<void*>(static_cast<std::uintptr_t>(nbytes)),
                   &release);
  }
  MemoryKind kind() const noexcept override { return MemoryKind::device; }
  Device device() const noexcept override { return Device::cuda(index_); }

 private:
  static void release(void* data, void* ctx) noexcept {
    cuda::device_free(data);
    count_free(MemoryKind::device, reinterpret_cast<std::uintptr_t>(ctx));
  }
  int index_;
};

struct Registry {
  PageableAllocator pageable;
  PinnedAllocator pinned;
  SharedAllocator shared{false};
  SharedAllocator pinned_shared{true};
  std::array<std::atomic<Allocator*>, 4> overrides{};
};

Registry& registry() {
  static Registry* r = new Registry();  // never destroyed: storages may outlive static destruction
  return *r;
}

Allocator& default_host_allocator(MemoryKind kind) {
  auto& r = registry();
  switch (kind) {
    case MemoryKind::pageable: return r.pageable;
    case MemoryKind::pinned: return r.pinned;
    case MemoryKind::shared: return r.shared;
    case MemoryKind::pinned_shared: return r.pinned_shared;
    case MemoryKind::device: break;
  }
  throw InvalidArgument("host_allocator: MemoryKind::device is not a host memory kind");
}

}  // namespace

Allocator& host_allocator(MemoryKind kind) {
  if (kind == MemoryKind::device) throw InvalidArgument("host_allocator: MemoryKind::device is not a host memory kind");
  Allocator* custom = registry().overrides[static_cast<std::size_t>(kind)].load(std::memory_order_acquire);
  return custom != nullptr ? *custom : default_host_allocator(kind);
}

Allocator* set_host_allocator(MemoryKind kind, Allocator* allocator) {
  if (kind == MemoryKind::device) throw InvalidArgument("set_host_allocator: MemoryKind::device is not a host memory kind");
  return registry().overrides[static_cast<std::size_t>(kind)].exchange(allocator, std::memory_order_acq_rel);
}

Allocator& cuda_device_allocator(int index) {
  const auto& a = cuda::availability();
  if (!a.available) throw Unsupported(a.reason);
  if (index < 0 || index >= a.device_count) {
    throw InvalidArgument(fmt::format("cuda:{} does not exist ({} device(s))", index, a.device_count));
  }
  static std::mutex m;
  static std::array<CudaDeviceAllocator*, 64> allocators{};
  std::lock_guard lock(m);
  auto& slot = allocators.at(static_cast<std::size_t>(index));
  if (slot == nullptr) slot = new CudaDeviceAllocator(index);
  return *slot;
}

HostMemoryUsage host_memory_usage() noexcept {
  auto get = [](MemoryKind k) { return g_live_bytes[static_cast<std::size_t>(k)].load(std::memory_order_relaxed); };
  return {get(MemoryKind::pageable), get(MemoryKind::pinned), get(MemoryKind::shared),
          get(MemoryKind::pinned_shared), get(MemoryKind::device)};
}

}  // namespace stagekit
