#include "stagekit/core/storage.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <vector>

#include <fmt/format.h>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit {

class StorageImpl {
 public:
  explicit StorageImpl(DataPtr data) : data_(std::move(data)) {}
  StorageImpl(const StorageImpl&) = delete;
  StorageImpl& operator=(const StorageImpl&) = delete;

  ~StorageImpl() {
    std::vector<std::pair<ReleaseObserverId, std::function<void()>>> observers;
    {
      std::lock_guard lock(mutex_);
      observers.swap(observers_);
    }
    for (auto& [id, fn] : observers) fn();
  }

  DataPtr data_;

  ReleaseObserverId add_observer(std::function<void()> fn) {
    static std::atomic<ReleaseObserverId> next{1};
    const ReleaseObserverId id = next.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex_);
    observers_.emplace_back(id, std::move(fn));
    return id;
  }
  void remove_observer(ReleaseObserverId id) noexcept {
    std::lock_guard lock(mutex_);
    std::erase_if(observers_, [id](const auto& o) { return o.first == id; });
  }

 private:
  std::mutex mutex_;
  std::vector<std::pair<ReleaseObserverId, std::function<void()>>> observers_;
};

Storage Storage::allocate(std::size_t nbytes, Device device, MemoryKind kind) {
  // A meta storage has a size and no memory.
  if (device.is_meta()) return from_data_ptr(DataPtr(nullptr, nbytes, device, MemoryKind::device, nullptr, nullptr));
  if (device.is_cuda()) return allocate_with(cuda_device_allocator(device.index), nbytes);
  check_argument(kind != MemoryKind::device, "Storage::allocate: MemoryKind::device needs a CUDA device");
  return allocate_with(host_allocator(kind), nbytes);
}

Storage Storage::allocate_with(Allocator& allocator, std::size_t nbytes) {
  return from_data_ptr(allocator.allocate(nbytes));
}

Storage Storage::from_data_ptr(DataPtr data) { return Storage(std::make_shared<StorageImpl>(std::move(data))); }

void* Storage::data() const noexcept { return impl_ ? impl_->data_.get() : nullptr; }
std::size_t Storage::nbytes() const noexcept { return impl_ ? impl_->data_.nbytes() : 0; }
Device Storage::device() const noexcept { return impl_ ? impl_->data_.device() : Device::cpu(); }
MemoryKind Storage::memory_kind() const noexcept { return impl_ ? impl_->data_.kind() : MemoryKind::pageable; }
int Storage::shared_fd() const noexcept { return impl_ ? impl_->data_.shared_fd() : -1; }
std::uint64_t Storage::shared_offset() const noexcept { return impl_ ? impl_->data_.shared_offset() : 0; }

void Storage::resize(std::size_t nbytes) {
  check_argument(defined(), "Storage::resize on an undefined storage");
  check_argument(!device().is_meta(), "Storage::resize: a meta storage has no memory to resize");
  const MemoryKind kind = memory_kind();
  if (kind != MemoryKind::pageable && kind != MemoryKind::device) {
    throw InvalidArgument(fmt::format("Storage::resize: {} storages cannot be resized", memory_kind_name(kind)));
  }
  Allocator& allocator = device().is_cuda() ? cuda_device_allocator(device().index) : host_allocator(kind);
  DataPtr fresh = allocator.allocate(nbytes);
  const std::size_t common = std::min(nbytes, this->nbytes());
  if (common > 0) {
    if (device().is_cuda()) {
      cuda::memcpy_sync(fresh.get(), impl_->data_.get(), common);
    } else {
      std::memcpy(fresh.get(), impl_->data_.get(), common);
    }
  }
  impl_->data_ = std::move(fresh);
}

ReleaseObserverId Storage::add_release_observer(std::function<void()> fn) const {
  check_argument(defined(), "add_release_observer on an undefined storage");
  return impl_->add_observer(std::move(fn));
}

void Storage::remove_release_observer(ReleaseObserverId id) const noexcept {
  if (impl_) impl_->remove_observer(id);
}

WeakStorage Storage::weak() const noexcept { return WeakStorage(impl_); }

void copy_bytes(const Storage& dst, std::size_t dst_offset, const Storage& src, std::size_t src_offset,
                std::size_t nbytes) {
  if (nbytes == 0) return;
  check_argument(dst.defined() && src.defined(), "copy_bytes: undefined storage");
  check_argument(dst_offset + nbytes <= dst.nbytes() && src_offset + nbytes <= src.nbytes(),
                 "copy_bytes: range out of bounds");
  auto* d = static_cast<std::byte*>(dst.data()) + dst_offset;
  const auto* s = static_cast<const std::byte*>(src.data()) + src_offset;
  if (dst.device().is_cpu() && src.device().is_cpu()) {
    std::memmove(d, s, nbytes);
  } else {
    cuda::memcpy_sync(d, s, nbytes);
  }
}

}  // namespace stagekit
