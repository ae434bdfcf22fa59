// stagekit/core/host_buffer_pool.h — HostBufferPool: pageable host buffers reused across calls.
//
// take(n) hands out a Storage of exactly n bytes of pageable host memory. When the last handle of
// that Storage dies, its memory goes back to the pool, still faulted in, and the next take() of the
// same size returns it: a caller that produces buffers of the same sizes again and again (the
// gathered tensors of a state dict, checkpoint after checkpoint) writes into memory that costs no
// page faults, as the engines' own benchmarks do. Contents of a reused buffer are whatever was
// last written; callers overwrite every byte.
//
// Invariants: at most max_cached_bytes wait in the pool (a buffer coming back beyond that is freed);
// close() (and the destructor) frees every waiting buffer, and buffers handed out before stay valid
// and are freed when their last handle dies; thread-safe.
#pragma once

#include <cstddef>
#include <memory>

#include "stagekit/core/storage.h"

namespace stagekit {

namespace detail {
struct HostBufferPoolState;
}

class HostBufferPool {
 public:
  static constexpr std::size_t kDefaultMaxCachedBytes = std::size_t{1} << 30;

  explicit HostBufferPool(std::size_t max_cached_bytes = kDefaultMaxCachedBytes);
  ~HostBufferPool();
  HostBufferPool(const HostBufferPool&) = delete;
  HostBufferPool& operator=(const HostBufferPool&) = delete;

  // A buffer of exactly `nbytes` (a reused one when the pool has one of that size).
  [[nodiscard]] Storage take(std::size_t nbytes);
  // Frees the waiting buffers; later buffers coming back are freed, and take() still works (it no
  // longer reuses anything).
  void close();

  struct Stats {
    std::size_t cached_bytes = 0;  // waiting in the pool
    std::size_t cached_buffers = 0;
    std::size_t reused = 0;     // take() calls served from the pool
    std::size_t allocated = 0;  // take() calls that allocated
  };
  [[nodiscard]] Stats stats() const;

 private:
  std::shared_ptr<detail::HostBufferPoolState> state_;
};

}  // namespace stagekit
