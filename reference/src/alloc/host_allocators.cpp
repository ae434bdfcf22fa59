// The default allocators of every memory kind, the per-kind registry and the live-byte counters.
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <mutex>

#include <fmt/format.h>

#include "os_memory.h"
#include "slab_pool.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit {
namespace {

// Pageable requests below a huge page share slabs backed by transparent huge pages: copies between
// buffers on 4 KiB pages lose a third of their bandwidth to TLB misses.
constexpr std::size_t kHugeSlabChunkLimit = std::size_t{2} << 20;
constexpr std::size_t kHugeSlabBytes = std::size_t{32} << 20;
// Pinned/shared requests below a huge page share slabs: one mlock, memfd and mapping for many
// buffers, and (for pinned memory) transparent huge pages.
constexpr std::size_t kSlabChunkLimit = (std::size_t{2} << 20) - 1;
constexpr std::size_t kSlabBytes = std::size_t{8} << 20;

std::array<std::atomic<std::uint64_t>, 5> g_live_bytes{};

void count_alloc(MemoryKind kind, std::size_t n) noexcept {
  g_live_bytes[static_cast<std::size_t>(kind)].fetch_add(n, std::memory_order_relaxed);
}
void count_free(MemoryKind kind, std::size_t n) noexcept {
  g_live_bytes[static_cast<std::size_t>(kind)].fetch_sub(n, std::memory_order_relaxed);
}
void* size_as_context(std::size_t n) noexcept { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(n)); }
std::size_t size_from_context(void* ctx) noexcept {
  return static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(ctx));
}

// ---- raw mappings (not counted): the memory behind large buffers and behind slabs ----------------

struct MappingContext {
  std::size_t nbytes = 0;
  int fd = -1;
  bool cuda_registered = false;
};

void release_mapping(void* data, void* context) noexcept {
  auto* ctx = static_cast<MappingContext*>(context);
  if (ctx->cuda_registered) cuda::host_unregister(data);
  detail::unmap(data, ctx->nbytes);  // munmap also unlocks
  if (ctx->fd >= 0) close(ctx->fd);
  delete ctx;
}
void release_cuda_host(void* data, void*) noexcept { cuda::host_free(data); }
void release_anonymous_raw(void* data, void* ctx) noexcept { detail::unmap(data, size_from_context(ctx)); }

DataPtr raw_pinned(std::size_t nbytes) {
  if (cuda::available()) {
    return DataPtr(cuda::host_alloc(nbytes), nbytes, Device::cpu(), MemoryKind::pinned, nullptr, &release_cuda_host);
  }
  void* p = detail::map_anonymous(nbytes, "pinned host memory");
  DataPtr out(p, nbytes, Device::cpu(), MemoryKind::pinned, new MappingContext{nbytes}, &release_mapping);
  detail::lock_pages(p, nbytes, "pinned host memory");  // on failure `out` unmaps
  return out;
}

DataPtr raw_shared(std::size_t nbytes, bool pinned) {
  const char* purpose = pinned ? "pinned shared memory" : "shared memory";
  const auto mapping = detail::map_shared_memfd(nbytes, purpose);
  auto* ctx = new MappingContext{nbytes, mapping.fd, false};
  DataPtr out(mapping.data, nbytes, Device::cpu(), pinned ? MemoryKind::pinned_shared : MemoryKind::shared, ctx,
              &release_mapping, mapping.fd, 0);
  if (pinned) {
    if (cuda::available()) {
      cuda::host_register(mapping.data, nbytes);
      ctx->cuda_registered = true;
    } else {
      detail::lock_pages(mapping.data, nbytes, purpose);
    }
  }
  return out;
}

DataPtr raw_shared_unpinned(std::size_t n) { return raw_shared(n, false); }
DataPtr raw_shared_pinned(std::size_t n) { return raw_shared(n, true); }

// ---- pageable ----------------------------------------------------------------------------------------
DataPtr raw_pageable(std::size_t nbytes) {
  void* p = detail::map_anonymous(nbytes, "pageable host memory");  // huge pages advised from 2 MiB
  return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pageable, size_as_context(nbytes), &release_anonymous_raw);
}

class PageableAllocator final : public Allocator {
 public:
  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, Device::cpu(), MemoryKind::pageable, nullptr, nullptr);
    if (nbytes < kHugeSlabChunkLimit) {
      // Small and medium buffers sit next to each other in huge-page slabs: a stage's many copies
      // then write one region instead of scattered heap chunks.
      DataPtr chunk = slabs_.allocate(nbytes, &release_chunk, size_as_context(nbytes));
      count_alloc(MemoryKind::pageable, nbytes);
      return chunk;
    }
    void* p = detail::map_anonymous(nbytes, "pageable host memory");
    count_alloc(MemoryKind::pageable, nbytes);
    return DataPtr(p, nbytes, Device::cpu(), MemoryKind::pageable, size_as_context(nbytes), &release_anonymous);
  }
  MemoryKind kind() const noexcept override { return MemoryKind::pageable; }

 private:
  static void release_anonymous(void* data, void* ctx) noexcept {
    detail::unmap(data, size_from_context(ctx));
    count_free(MemoryKind::pageable, size_from_context(ctx));
  }
  static void release_chunk(void*, void* ctx) noexcept { count_free(MemoryKind::pageable, size_from_context(ctx)); }

  detail::SlabPool slabs_{MemoryKind::pageable, kHugeSlabBytes, &raw_pageable};
};

// ---- pinned, shared, pinned+shared: large buffers mapped alone, small ones from slabs -------------
class MappedAllocator final : public Allocator {
 public:
  MappedAllocator(MemoryKind kind, detail::SlabPool::BackingFn raw)
      : kind_(kind), raw_(raw), slabs_(kind, kSlabBytes, raw) {}

  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) {
      const MemoryKind empty_kind = is_shared_kind(kind_) ? MemoryKind::shared : MemoryKind::pageable;
      return DataPtr(nullptr, 0, Device::cpu(), empty_kind, nullptr, nullptr);
    }
    if (nbytes <= kSlabChunkLimit) {
      try {
        DataPtr chunk = slabs_.allocate(nbytes, &count_release, counter_context(nbytes));
        count_alloc(kind_, nbytes);
        return chunk;
      } catch (const ResourceExhausted&) {
        // A whole slab does not fit under the limits in force; the buffer alone may.
      }
    }
    // Large: the mapping itself, wrapped so that its release is counted.
    auto* holder = new Holder{raw_(nbytes), kind_};  // raw_ may throw: nothing to undo
    count_alloc(kind_, nbytes);
    DataPtr& raw = holder->raw;
    return DataPtr(raw.get(), nbytes, Device::cpu(), kind_, holder, &release_holder, raw.shared_fd(),
                   raw.shared_offset());
  }
  MemoryKind kind() const noexcept override { return kind_; }

 private:
  struct Holder {
    DataPtr raw;
    MemoryKind kind;
  };
  // The context of a chunk encodes its kind and size: kind in the low 3 bits, size above them.
  void* counter_context(std::size_t n) const noexcept {
    return reinterpret_cast<void*>((static_cast<std::uintptr_t>(n) << 3) | static_cast<std::uintptr_t>(kind_));
  }
  static void count_release(void*, void* ctx) noexcept {
    const auto v = reinterpret_cast<std::uintptr_t>(ctx);
    count_free(static_cast<MemoryKind>(v & 7U), static_cast<std::size_t>(v >> 3));
  }
  static void release_holder(void*, void* ctx) noexcept {
    auto* holder = static_cast<Holder*>(ctx);
    count_free(holder->kind, holder->raw.nbytes());
    delete holder;
  }

  MemoryKind kind_;
  detail::SlabPool::BackingFn raw_;
  detail::SlabPool slabs_;
};

// ---- CUDA device memory --------------------------------------------------------------------------
class CudaDeviceAllocator final : public Allocator {
 public:
  explicit CudaDeviceAllocator(int index) : index_(index) {}
  DataPtr allocate(std::size_t nbytes) override {
    if (nbytes == 0) return DataPtr(nullptr, 0, device(), MemoryKind::device, nullptr, nullptr);
    void* p = cuda::device_malloc(index_, nbytes);
    count_alloc(MemoryKind::device, nbytes);
    return DataPtr(p, nbytes, device(), MemoryKind::device, size_as_context(nbytes), &release);
  }
  MemoryKind kind() const noexcept override { return MemoryKind::device; }
  Device device() const noexcept override { return Device::cuda(index_); }

 private:
  static void release(void* data, void* ctx) noexcept {
    cuda::device_free(data);
    count_free(MemoryKind::device, size_from_context(ctx));
  }
  int index_;
};

struct Registry {
  PageableAllocator pageable;
  MappedAllocator pinned{MemoryKind::pinned, &raw_pinned};
  MappedAllocator shared{MemoryKind::shared, &raw_shared_unpinned};
  MappedAllocator pinned_shared{MemoryKind::pinned_shared, &raw_shared_pinned};
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
  if (kind == MemoryKind::device)
    throw InvalidArgument("set_host_allocator: MemoryKind::device is not a host memory kind");
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
  return {get(MemoryKind::pageable), get(MemoryKind::pinned), get(MemoryKind::shared), get(MemoryKind::pinned_shared),
          get(MemoryKind::device)};
}

}  // namespace stagekit
