#include "slab_pool.h"

#include <memory>
#include <new>

#include "os_memory.h"

namespace stagekit::detail {

struct SlabPool::Slab {
  SlabPool* pool = nullptr;
  DataPtr backing;
  std::size_t used = 0;  // bump pointer (under the pool mutex)
  std::size_t live = 0;  // chunks not yet released (under the pool mutex)
};

struct SlabPool::Chunk {
  Slab* slab;
  DataPtr::ReleaseFn release;
  void* context;
};

namespace {
constexpr std::size_t kChunkAlignment = 64;
}

DataPtr SlabPool::allocate(std::size_t nbytes, DataPtr::ReleaseFn on_release, void* context) {
  const std::size_t size = round_up(nbytes, kChunkAlignment);
  Slab* slab = nullptr;
  std::size_t offset = 0;
  {
    std::lock_guard lock(mutex_);
    if (current_ == nullptr || current_->used + size > current_->backing.nbytes()) {
      current_ = nullptr;  // a full slab is freed by its last chunk (a current slab always has one)
      auto fresh = std::make_unique<Slab>();
      fresh->pool = this;
      fresh->backing = backing_(slab_bytes_);  // may throw: nothing changed yet
      current_ = fresh.release();
    }
    slab = current_;
    offset = slab->used;
    slab->used += size;
    ++slab->live;
  }
  auto* data = static_cast<std::byte*>(slab->backing.get()) + offset;
  auto* chunk = new (std::nothrow) Chunk{slab, on_release, context};
  if (chunk == nullptr) {
    this->release(slab);
    throw std::bad_alloc();
  }
  const int fd = slab->backing.shared_fd();
  return DataPtr(data, nbytes, Device::cpu(), kind_, chunk, &release_chunk, fd,
                 fd >= 0 ? slab->backing.shared_offset() + offset : 0);
}

void SlabPool::release_chunk(void* data, void* context) noexcept {
  auto* chunk = static_cast<Chunk*>(context);
  Slab* slab = chunk->slab;
  const DataPtr::ReleaseFn on_release = chunk->release;
  void* user_context = chunk->context;
  delete chunk;
  slab->pool->release(slab);
  if (on_release != nullptr) on_release(data, user_context);
}

void SlabPool::release(Slab* slab) noexcept {
  Slab* doomed = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (--slab->live == 0) {
      // An empty slab is freed at once, even the current one: no idle memory stays locked or shared.
      if (slab == current_) current_ = nullptr;
      doomed = slab;
    }
  }
  delete doomed;
}

}  // namespace stagekit::detail
