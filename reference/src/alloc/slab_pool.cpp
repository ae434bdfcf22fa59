#include "slab_pool.h"

#include <algorithm>
#include <memory>
#include <new>

#include "os_memory.h"

namespace stagekit::detail {

struct SlabPool::Slab {
  SlabPool* pool = nullptr;
  DataPtr backing;
  std::size_t used = 0;         // bump pointer (under the pool mutex)
  std::size_t live = 0;         // chunks not yet released (under the pool mutex)
  std::size_t free_chunks = 0;  // released chunks waiting in the pool's free lists
};

struct SlabPool::Chunk {
  Slab* slab;
  std::size_t offset;
  std::size_t size;  // rounded
  DataPtr::ReleaseFn release;
  void* context;
};

namespace {
constexpr std::size_t kChunkAlignment = 64;
}

DataPtr SlabPool::allocate(std::size_t nbytes, DataPtr::ReleaseFn on_release, void* context) {
  const std::size_t size = round_up(nbytes, kChunkAlignment);
  auto chunk = std::make_unique<Chunk>(Chunk{nullptr, 0, size, on_release, context});
  {
    std::lock_guard lock(mutex_);
    if (auto it = free_.find(size); it != free_.end() && !it->second.empty()) {
      std::tie(chunk->slab, chunk->offset) = it->second.back();
      it->second.pop_back();
      --chunk->slab->free_chunks;
    } else {
      if (current_ == nullptr || current_->used + size > current_->backing.nbytes()) {
        current_ = nullptr;  // a full slab is freed by its last chunk (a current slab always has one)
        auto fresh = std::make_unique<Slab>();
        fresh->pool = this;
        fresh->backing = backing_(slab_bytes_);  // may throw: nothing changed yet
        current_ = fresh.release();
      }
      chunk->slab = current_;
      chunk->offset = current_->used;
      current_->used += size;
    }
    ++chunk->slab->live;
  }
  Slab* slab = chunk->slab;
  auto* data = static_cast<std::byte*>(slab->backing.get()) + chunk->offset;
  const int fd = slab->backing.shared_fd();
  const std::uint64_t offset = fd >= 0 ? slab->backing.shared_offset() + chunk->offset : 0;
  return DataPtr(data, nbytes, Device::cpu(), kind_, chunk.release(), &release_chunk, fd, offset);
}

void SlabPool::release_chunk(void* data, void* context) noexcept {
  std::unique_ptr<Chunk> chunk(static_cast<Chunk*>(context));
  chunk->slab->pool->release(chunk->slab, chunk->offset, chunk->size);
  if (chunk->release != nullptr) chunk->release(data, chunk->context);
}

void SlabPool::release(Slab* slab, std::size_t offset, std::size_t size) noexcept {
  Slab* doomed = nullptr;
  {
    std::lock_guard lock(mutex_);
    if (--slab->live == 0) {
      // An empty slab is freed at once, even the current one: no idle memory stays locked or shared.
      if (slab == current_) current_ = nullptr;
      if (slab->free_chunks > 0) {
        for (auto& [unused, list] : free_) {
          std::erase_if(list, [slab](const auto& f) { return f.first == slab; });
        }
      }
      doomed = slab;
    } else {
      try {
        free_[size].emplace_back(slab, offset);
        ++slab->free_chunks;
      } catch (...) {  // NOLINT(bugprone-empty-catch): without a free-list slot the chunk is simply not reused
      }
    }
  }
  delete doomed;
}

}  // namespace stagekit::detail
