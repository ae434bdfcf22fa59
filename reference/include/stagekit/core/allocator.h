// stagekit/core/allocator.h — pluggable allocators, one per memory kind.
//
// An Allocator hands out DataPtr owners. Each DataPtr releases its memory exactly once (when it is
// destroyed) through the allocator's release function; a zero-byte request returns a null pointer
// that still carries its device and kind. Errors are ResourceExhausted exceptions whose message says
// what failed, how much was asked, the limit in force and what to change.
//
// Default host allocators:
//   pageable       malloc for small requests, mmap (with transparent huge pages) for large ones;
//   pinned         cudaHostAlloc when a CUDA device is present, otherwise mmap + mlock;
//   shared         memfd_create + fallocate + mmap(MAP_SHARED): the fd can be passed to another process;
//   pinned_shared  shared, then cudaHostRegister (GPU) or mlock (no GPU).
// Live byte counts per kind are kept for diagnostics (host_memory_usage()).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "stagekit/core/device.h"

namespace stagekit {

// Owner of one allocation. Move-only; destroying it releases the memory.
class DataPtr {
 public:
  using ReleaseFn = void (*)(void* data, void* context) noexcept;

  DataPtr() noexcept = default;
  DataPtr(void* data, std::size_t nbytes, Device device, MemoryKind kind, void* context, ReleaseFn release,
          int shared_fd = -1, std::uint64_t shared_offset = 0) noexcept
      : data_(data),
        nbytes_(nbytes),
        device_(device),
        kind_(kind),
        context_(context),
        release_(release),
        shared_fd_(shared_fd),
        shared_offset_(shared_offset) {}
  DataPtr(DataPtr&& other) noexcept { swap(other); }
  DataPtr& operator=(DataPtr&& other) noexcept {
    DataPtr tmp(std::move(other));
    swap(tmp);
    return *this;
  }
  DataPtr(const DataPtr&) = delete;
  DataPtr& operator=(const DataPtr&) = delete;
  ~DataPtr() { reset(); }

  void reset() noexcept {
    if (release_ != nullptr) release_(data_, context_);
    release_ = nullptr;
    data_ = nullptr;
    context_ = nullptr;
    nbytes_ = 0;
  }
  void swap(DataPtr& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(nbytes_, o.nbytes_);
    std::swap(device_, o.device_);
    std::swap(kind_, o.kind_);
    std::swap(context_, o.context_);
    std::swap(release_, o.release_);
    std::swap(shared_fd_, o.shared_fd_);
    std::swap(shared_offset_, o.shared_offset_);
  }

  [[nodiscard]] void* get() const noexcept { return data_; }
  [[nodiscard]] std::size_t nbytes() const noexcept { return nbytes_; }
  [[nodiscard]] Device device() const noexcept { return device_; }
  [[nodiscard]] MemoryKind kind() const noexcept { return kind_; }
  // For shared memory: the file descriptor (owned by the allocation) and the offset of data in it.
  [[nodiscard]] int shared_fd() const noexcept { return shared_fd_; }
  [[nodiscard]] std::uint64_t shared_offset() const noexcept { return shared_offset_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  Device device_{};
  MemoryKind kind_ = MemoryKind::pageable;
  void* context_ = nullptr;
  ReleaseFn release_ = nullptr;
  int shared_fd_ = -1;
  std::uint64_t shared_offset_ = 0;
};

class Allocator {
 public:
  virtual ~Allocator() = default;
  // Allocates `nbytes` (may be 0). Throws ResourceExhausted on failure.
  [[nodiscard]] virtual DataPtr allocate(std::size_t nbytes) = 0;
  [[nodiscard]] virtual MemoryKind kind() const noexcept = 0;
  [[nodiscard]] virtual Device device() const noexcept { return Device::cpu(); }
};

// The allocator used for host memory of `kind` (kind must not be MemoryKind::device).
[[nodiscard]] Allocator& host_allocator(MemoryKind kind);
// Replaces the allocator of `kind` (nullptr restores the default); returns the previous one.
// The replacement must outlive every storage it allocates.
Allocator* set_host_allocator(MemoryKind kind, Allocator* allocator);
// The allocator of CUDA device memory on device `index` (throws Unsupported without CUDA).
[[nodiscard]] Allocator& cuda_device_allocator(int index);

// Bytes currently allocated by the default allocators, per kind.
struct HostMemoryUsage {
  std::uint64_t pageable = 0;
  std::uint64_t pinned = 0;
  std::uint64_t shared = 0;
  std::uint64_t pinned_shared = 0;
  std::uint64_t device = 0;
};
[[nodiscard]] HostMemoryUsage host_memory_usage() noexcept;

}  // namespace stagekit
