// HostBufferPool: a freed buffer comes back to the next take() of its size (same memory, no new
// allocation), the cap and close() free instead of caching, and buffers outlive their pool.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <optional>

#include "stagekit/core/allocator.h"
#include "stagekit/core/host_buffer_pool.h"

namespace stagekit {
namespace {

TEST(HostBufferPool, AFreedBufferIsReusedBySize) {
  HostBufferPool pool;
  void* first = nullptr;
  {
    Storage a = pool.take(1 << 20);
    first = a.data();
    std::memset(a.data(), 7, a.nbytes());
    EXPECT_EQ(a.memory_kind(), MemoryKind::pageable);
    EXPECT_EQ(pool.stats().cached_buffers, 0U);
  }
  EXPECT_EQ(pool.stats().cached_buffers, 1U);
  EXPECT_EQ(pool.stats().cached_bytes, std::size_t{1} << 20);
  Storage other = pool.take(4096);  // another size: a new buffer
  EXPECT_NE(other.data(), first);
  Storage again = pool.take(1 << 20);
  EXPECT_EQ(again.data(), first) << "the freed buffer of the same size comes back";
  EXPECT_EQ(static_cast<unsigned char*>(again.data())[100], 7) << "reused as it was left";
  const HostBufferPool::Stats s = pool.stats();
  EXPECT_EQ(s.reused, 1U);
  EXPECT_EQ(s.allocated, 2U);
  EXPECT_EQ(s.cached_buffers, 0U);
  Storage b = pool.take(1 << 20);  // the other one is in use: a second buffer
  EXPECT_NE(b.data(), again.data());
}

TEST(HostBufferPool, TheCapAndCloseFreeInsteadOfCaching) {
  const std::uint64_t live_before = host_memory_usage().pageable;
  HostBufferPool pool(/*max_cached_bytes=*/3000);
  {
    Storage a = pool.take(2000);
    Storage b = pool.take(2000);
  }
  EXPECT_EQ(pool.stats().cached_buffers, 1U) << "the second buffer would pass the cap: freed";
  std::optional<Storage> kept = pool.take(2000);
  pool.close();
  EXPECT_EQ(pool.stats().cached_buffers, 0U);
  kept.reset();
  EXPECT_EQ(pool.stats().cached_buffers, 0U) << "a buffer coming back to a closed pool is freed";
  EXPECT_EQ(host_memory_usage().pageable, live_before) << "nothing left allocated";
}

TEST(HostBufferPool, BuffersOutliveTheirPool) {
  Storage survivor;
  {
    HostBufferPool pool;
    survivor = pool.take(512);
    std::memset(survivor.data(), 3, survivor.nbytes());
  }
  EXPECT_EQ(static_cast<unsigned char*>(survivor.data())[511], 3);
  survivor = Storage();  // freed now, through the pool's state it kept alive
}

}  // namespace
}  // namespace stagekit
