// stagekit/core/storage.h — Storage: a refcounted handle over one flat byte buffer.
//
// Sharing is identity of the buffer, exactly as in PyTorch: two tensors share memory when their
// storages are the same StorageImpl (is_alias_of), never because their addresses happen to match.
// Copying a Storage copies the handle, not the bytes.
//
// Invariants:
//   * identity() is unique among live storages and stable for a storage's whole life (it does not
//     change on resize).
//   * release observers run exactly once, in the destructor of the last handle, before the memory is
//     freed; an observer must not throw and must not re-enter the dying storage.
//   * resize() is allowed for pageable host storages and device storages only; it keeps the first
//     min(old, new) bytes and may move data().
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "stagekit/core/allocator.h"
#include "stagekit/core/device.h"

namespace stagekit {

class StorageImpl;
class WeakStorage;

using ReleaseObserverId = std::uint64_t;

class Storage {
 public:
  Storage() noexcept = default;  // an undefined (null) storage

  // Allocates `nbytes` of host memory of `kind` (or device memory when `device` is CUDA).
  [[nodiscard]] static Storage allocate(std::size_t nbytes, Device device = Device::cpu(),
                                        MemoryKind kind = MemoryKind::pageable);
  [[nodiscard]] static Storage allocate_with(Allocator& allocator, std::size_t nbytes);
  [[nodiscard]] static Storage from_data_ptr(DataPtr data);

  [[nodiscard]] bool defined() const noexcept { return impl_ != nullptr; }
  [[nodiscard]] void* data() const noexcept;
  [[nodiscard]] std::size_t nbytes() const noexcept;
  [[nodiscard]] Device device() const noexcept;
  [[nodiscard]] MemoryKind memory_kind() const noexcept;
  [[nodiscard]] int shared_fd() const noexcept;                // -1 unless shared memory
  [[nodiscard]] std::uint64_t shared_offset() const noexcept;  // offset of data() in shared_fd()
  [[nodiscard]] bool is_alias_of(const Storage& other) const noexcept { return impl_ == other.impl_; }
  [[nodiscard]] const void* identity() const noexcept { return impl_.get(); }
  [[nodiscard]] long use_count() const noexcept { return impl_.use_count(); }

  // Reallocates to `nbytes` (pageable host or device storages only), keeping the common prefix.
  void resize(std::size_t nbytes);

  // Registers `fn` to run when the last handle to this storage goes away.
  ReleaseObserverId add_release_observer(std::function<void()> fn) const;
  void remove_release_observer(ReleaseObserverId id) const noexcept;

  [[nodiscard]] WeakStorage weak() const noexcept;

 private:
  friend class WeakStorage;
  explicit Storage(std::shared_ptr<StorageImpl> impl) noexcept : impl_(std::move(impl)) {}
  std::shared_ptr<StorageImpl> impl_;
};

// A non-owning reference to a storage; lock() yields an undefined Storage once it has died.
class WeakStorage {
 public:
  WeakStorage() noexcept = default;
  [[nodiscard]] Storage lock() const noexcept { return Storage(impl_.lock()); }
  [[nodiscard]] bool expired() const noexcept { return impl_.expired(); }

 private:
  friend class Storage;
  explicit WeakStorage(std::weak_ptr<StorageImpl> impl) noexcept : impl_(std::move(impl)) {}
  std::weak_ptr<StorageImpl> impl_;
};

// Copies `nbytes` from src (+src_offset) to dst (+dst_offset) across any devices; synchronous.
void copy_bytes(const Storage& dst, std::size_t dst_offset, const Storage& src, std::size_t src_offset,
                std::size_t nbytes);

}  // namespace stagekit
