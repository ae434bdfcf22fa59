// HostBufferPool (see stagekit/core/host_buffer_pool.h): a free list of DataPtrs by size behind a
// mutex. A handed-out Storage owns a DataPtr whose release puts the original allocation back.
#include "stagekit/core/host_buffer_pool.h"

#include <map>
#include <mutex>
#include <utility>

#include "stagekit/core/allocator.h"

namespace stagekit {
namespace detail {

struct HostBufferPoolState {
  explicit HostBufferPoolState(std::size_t max) : max_cached_bytes(max) {}
  std::mutex mutex;
  bool open = true;
  std::size_t max_cached_bytes;
  std::multimap<std::size_t, DataPtr> waiting;  // by size
  HostBufferPool::Stats stats;
};

}  // namespace detail
namespace {

// What a handed-out Storage's DataPtr carries: the pool (kept alive by it) and the allocation.
struct Lease {
  std::shared_ptr<detail::HostBufferPoolState> pool;
  DataPtr allocation;
};

void give_back(void* /*data*/, void* context) noexcept {
  auto* lease = static_cast<Lease*>(context);
  DataPtr to_free;
  {
    detail::HostBufferPoolState& pool = *lease->pool;
    std::lock_guard lock(pool.mutex);
    const std::size_t n = lease->allocation.nbytes();
    if (pool.open && pool.stats.cached_bytes + n <= pool.max_cached_bytes) {
      pool.waiting.emplace(n, std::move(lease->allocation));
      pool.stats.cached_bytes += n;
      pool.stats.cached_buffers += 1;
    } else {
      to_free = std::move(lease->allocation);
    }
  }
  delete lease;  // frees `to_free` (if any) after the lock is released, then the lease
}

}  // namespace

HostBufferPool::HostBufferPool(std::size_t max_cached_bytes)
    : state_(std::make_shared<detail::HostBufferPoolState>(max_cached_bytes)) {}

HostBufferPool::~HostBufferPool() { close(); }

Storage HostBufferPool::take(std::size_t nbytes) {
  if (nbytes == 0) return Storage::allocate(0);
  DataPtr allocation;
  bool reused = false;
  {
    std::lock_guard lock(state_->mutex);
    if (const auto it = state_->waiting.find(nbytes); it != state_->waiting.end()) {
      allocation = std::move(it->second);
      state_->waiting.erase(it);
      state_->stats.cached_bytes -= nbytes;
      state_->stats.cached_buffers -= 1;
      state_->stats.reused += 1;
      reused = true;
    } else {
      state_->stats.allocated += 1;
    }
  }
  if (!reused) allocation = host_allocator(MemoryKind::pageable).allocate(nbytes);
  void* data = allocation.get();
  auto* lease = new Lease{state_, std::move(allocation)};
  return Storage::from_data_ptr(DataPtr(data, nbytes, Device::cpu(), MemoryKind::pageable, lease, &give_back));
}

void HostBufferPool::close() {
  std::multimap<std::size_t, DataPtr> to_free;
  {
    std::lock_guard lock(state_->mutex);
    state_->open = false;
    to_free.swap(state_->waiting);
    state_->stats.cached_bytes = 0;
    state_->stats.cached_buffers = 0;
  }
}

HostBufferPool::Stats HostBufferPool::stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

}  // namespace stagekit
