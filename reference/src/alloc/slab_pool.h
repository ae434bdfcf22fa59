// Internal: sub-allocation of buffers from larger slabs.
//
// Page-locking or mapping every small buffer on its own costs a page (or a memfd and a VMA) per
// buffer: 100,000 small shared tensors would exhaust the file-descriptor and mapping limits; and
// medium buffers on their own mappings cannot use transparent huge pages. A SlabPool carves chunks
// (64-byte aligned) out of slabs obtained from a backing allocation function. A freed chunk is
// reused by the next request of the same rounded size, and a slab is freed as soon as its last chunk
// is freed, so idle memory is never kept locked or shared and repeated stages do not grow memory.
// Chunks of a shared slab carry the slab's fd and their offset in it. Thread-safe.
#pragma once

#include <cstddef>
#include <mutex>
#include <utility>
#include <vector>

#include <absl/container/flat_hash_map.h>

#include "stagekit/core/allocator.h"

namespace stagekit::detail {

class SlabPool {
 public:
  using BackingFn = DataPtr (*)(std::size_t nbytes);

  SlabPool(MemoryKind kind, std::size_t slab_bytes, BackingFn backing)
      : kind_(kind), slab_bytes_(slab_bytes), backing_(backing) {}
  SlabPool(const SlabPool&) = delete;
  SlabPool& operator=(const SlabPool&) = delete;

  // A chunk of `nbytes` (0 < nbytes <= slab_bytes); `on_release` is called with `context` when the
  // chunk's DataPtr is destroyed, after the chunk has been returned to the pool.
  [[nodiscard]] DataPtr allocate(std::size_t nbytes, DataPtr::ReleaseFn on_release, void* context);
  [[nodiscard]] std::size_t slab_bytes() const noexcept { return slab_bytes_; }

 private:
  struct Slab;
  struct Chunk;
  static void release_chunk(void* data, void* chunk) noexcept;
  void release(Slab* slab, std::size_t offset, std::size_t size) noexcept;

  MemoryKind kind_;
  std::size_t slab_bytes_;
  BackingFn backing_;
  std::mutex mutex_;
  Slab* current_ = nullptr;
  // Freed chunks by rounded size, for reuse: (slab, offset).
  absl::flat_hash_map<std::size_t, std::vector<std::pair<Slab*, std::size_t>>> free_;
};

}  // namespace stagekit::detail
