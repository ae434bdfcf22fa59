// The default host allocators, checked with the independent probes; and the wording of their
// resource errors (what failed, how much, the limit, what to change).
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "stagekit/core/allocator.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/testing/memory_probe.h"
#include "stagekit/testing/run_in_child.h"

namespace stagekit {
namespace {

using namespace std::chrono_literals;

TEST(HostAllocators, KindsAreWhatTheOsSays) {
  if (cuda::available()) GTEST_SKIP() << "with a CUDA device pinning goes through the driver; see the CUDA tests";
  for (std::size_t n : {std::size_t{100}, std::size_t{3} << 20}) {
    Storage pageable = Storage::allocate(n);
    Storage pinned = Storage::allocate(n, Device::cpu(), MemoryKind::pinned);
    Storage shared = Storage::allocate(n, Device::cpu(), MemoryKind::shared);
    Storage both = Storage::allocate(n, Device::cpu(), MemoryKind::pinned_shared);
    EXPECT_FALSE(probe::page_locked(pageable.data(), n).yes);
    EXPECT_FALSE(probe::shared_mapping(pageable.data(), n).yes);
    EXPECT_TRUE(probe::page_locked(pinned.data(), n).yes) << probe::page_locked(pinned.data(), n).detail;
    EXPECT_FALSE(probe::shared_mapping(pinned.data(), n).yes);
    EXPECT_FALSE(probe::page_locked(shared.data(), n).yes);
    EXPECT_TRUE(probe::shared_mapping(shared.data(), n).yes) << probe::shared_mapping(shared.data(), n).detail;
    EXPECT_TRUE(probe::fork_write_visible(shared.data(), n).yes);
    EXPECT_FALSE(probe::fork_write_visible(pageable.data(), n).yes);
    EXPECT_TRUE(probe::page_locked(both.data(), n).yes);
    EXPECT_TRUE(probe::shared_mapping(both.data(), n).yes);
    EXPECT_GE(shared.shared_fd(), 0);
    EXPECT_EQ(pageable.shared_fd(), -1);
  }
}

TEST(HostAllocators, ZeroBytesAllocateNothingAndAreNeverPinned) {
  const auto before = probe::locked_bytes();
  for (MemoryKind k : {MemoryKind::pageable, MemoryKind::pinned, MemoryKind::shared, MemoryKind::pinned_shared}) {
    Storage s = Storage::allocate(0, Device::cpu(), k);
    EXPECT_EQ(s.data(), nullptr);
    EXPECT_EQ(s.nbytes(), 0U);
    EXPECT_FALSE(is_pinned_kind(s.memory_kind())) << memory_kind_name(k);
  }
  EXPECT_EQ(probe::locked_bytes(), before);
}

TEST(HostAllocators, EveryByteAndDescriptorIsReturned) {
  const HostMemoryUsage before = host_memory_usage();
  const std::uint64_t locked = probe::locked_bytes();
  const std::size_t fds = probe::open_file_descriptors();
  {
    std::vector<Storage> keep;
    for (MemoryKind k : {MemoryKind::pageable, MemoryKind::pinned, MemoryKind::shared, MemoryKind::pinned_shared}) {
      for (std::size_t n : {std::size_t{1}, std::size_t{5000}, std::size_t{2} << 20}) {
        keep.push_back(Storage::allocate(n, Device::cpu(), k));
      }
    }
    EXPECT_GT(host_memory_usage().shared, before.shared);
    EXPECT_GT(probe::open_file_descriptors(), fds);
  }
  const HostMemoryUsage after = host_memory_usage();
  EXPECT_EQ(after.pageable, before.pageable);
  EXPECT_EQ(after.pinned, before.pinned);
  EXPECT_EQ(after.shared, before.shared);
  EXPECT_EQ(after.pinned_shared, before.pinned_shared);
  EXPECT_EQ(probe::locked_bytes(), locked);
  EXPECT_EQ(probe::open_file_descriptors(), fds);
}

TEST(HostAllocators, SmallPinnedAndSharedBuffersShareSlabs) {
  // Far more buffers than open files or mappings allowed if each had its own memfd and mapping.
  constexpr std::size_t kBuffers = 30000;
  const std::size_t mappings_before = probe::shared_object_mappings();
  const std::size_t fds_before = probe::open_file_descriptors();
  const std::uint64_t locked_before = probe::locked_bytes();
  const HostMemoryUsage usage_before = host_memory_usage();
  {
    std::vector<Storage> shared;
    std::vector<Storage> pinned;
    for (std::size_t i = 0; i < kBuffers; ++i) {
      shared.push_back(Storage::allocate(1000 + i % 100, Device::cpu(), MemoryKind::pinned_shared));
      pinned.push_back(Storage::allocate(1024, Device::cpu(), MemoryKind::pinned));
    }
    EXPECT_LT(probe::shared_object_mappings() - mappings_before, 100U);
    EXPECT_LT(probe::open_file_descriptors() - fds_before, 100U);
    for (std::size_t i : {std::size_t{0}, kBuffers / 2, kBuffers - 1}) {
      const Storage& s = shared[i];
      EXPECT_EQ(s.memory_kind(), MemoryKind::pinned_shared);
      EXPECT_GE(s.shared_fd(), 0);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(s.data()) % 64, 0U);
      EXPECT_TRUE(probe::shared_mapping(s.data(), s.nbytes()).yes);
      EXPECT_TRUE(probe::fork_write_visible(s.data(), s.nbytes()).yes);
      if (!cuda::available()) {
        EXPECT_TRUE(probe::page_locked(s.data(), s.nbytes()).yes);
        EXPECT_TRUE(probe::page_locked(pinned[i].data(), 1024).yes);
      }
    }
    // Chunks never overlap.
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
    for (const Storage& s : shared) ranges.emplace_back(reinterpret_cast<std::uintptr_t>(s.data()), s.nbytes());
    std::sort(ranges.begin(), ranges.end());
    for (std::size_t i = 1; i < ranges.size(); ++i)
      ASSERT_GE(ranges[i].first, ranges[i - 1].first + ranges[i - 1].second);
  }
  EXPECT_EQ(probe::shared_object_mappings(), mappings_before) << "empty slabs must be unmapped";
  EXPECT_EQ(probe::open_file_descriptors(), fds_before);
  EXPECT_EQ(probe::locked_bytes(), locked_before);
  EXPECT_EQ(host_memory_usage().pinned_shared, usage_before.pinned_shared);
  EXPECT_EQ(host_memory_usage().pinned, usage_before.pinned);
}

TEST(HostAllocators, SlabsAreSharedSafelyBetweenThreads) {
  // The stager's workers allocate small buffers at the same time, and a buffer is freed on whichever
  // thread drops it last: each thread's chunks keep their own bytes, and every slab is returned.
  constexpr std::size_t kThreads = 4;
  constexpr std::size_t kBuffersPerThread = 2000;
  const std::size_t mappings_before = probe::shared_object_mappings();
  const std::uint64_t locked_before = probe::locked_bytes();
  const HostMemoryUsage usage_before = host_memory_usage();
  {
    std::vector<std::vector<Storage>> buffers(kThreads);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&buffers, t] {
        std::vector<Storage>& mine = buffers[t];
        for (std::size_t i = 0; i < kBuffersPerThread; ++i) {
          const MemoryKind kind = i % 2 == 0 ? MemoryKind::pinned_shared : MemoryKind::pinned;
          Storage s = Storage::allocate(200 + i % 300, Device::cpu(), kind);
          std::memset(s.data(), static_cast<int>(t + 1), s.nbytes());
          mine.push_back(std::move(s));
          // Free one now and then: its chunk goes to the next request of its size, on any thread.
          if (i % 3 == 2) mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(mine.size() / 2));
        }
      });
    }
    for (std::thread& th : threads) th.join();
    for (std::size_t t = 0; t < kThreads; ++t) {
      const auto mark = static_cast<unsigned char>(t + 1);
      for (const Storage& s : buffers[t]) {
        const auto* bytes = static_cast<const unsigned char*>(s.data());
        ASSERT_TRUE(std::all_of(bytes, bytes + s.nbytes(), [mark](unsigned char b) { return b == mark; }))
            << "a chunk of thread " << t << " was overwritten";
      }
    }
    // Released on threads other than the ones that allocated them.
    threads.clear();
    for (std::size_t t = 0; t < kThreads; ++t) {
      threads.emplace_back([&buffers, t] { buffers[(t + 1) % kThreads].clear(); });
    }
    for (std::thread& th : threads) th.join();
  }
  EXPECT_EQ(probe::shared_object_mappings(), mappings_before) << "empty slabs must be unmapped";
  EXPECT_EQ(probe::locked_bytes(), locked_before);
  EXPECT_EQ(host_memory_usage().pinned_shared, usage_before.pinned_shared);
  EXPECT_EQ(host_memory_usage().pinned, usage_before.pinned);
}

TEST(HostAllocators, MemlockRefusalSaysWhatToChange) {
  if (cuda::available()) GTEST_SKIP() << "with a CUDA device pinning goes through the driver, not mlock";
  const auto out = probe::run_in_child(
      []() -> std::string {
        if (geteuid() == 0 && setuid(65534) != 0) return "cannot drop privileges";
        rlimit rl{64 * 1024, 64 * 1024};
        if (setrlimit(RLIMIT_MEMLOCK, &rl) != 0) return "setrlimit failed";
        try {
          (void)Storage::allocate(1 << 20, Device::cpu(), MemoryKind::pinned);
          return "no error";
        } catch (const ResourceExhausted& e) {
          const std::string m = e.what();
          for (const char* want : {"1048576 bytes", "mlock", "RLIMIT_MEMLOCK is 64.0 KiB (65536 bytes)", "ulimit -l",
                                   "CAP_IPC_LOCK", "pin_memory=false"}) {
            if (m.find(want) == std::string::npos) return "message lacks '" + std::string(want) + "': " + m;
          }
        }
        if (probe::locked_bytes() != 0) return "locked memory left behind";
        return {};
      },
      30s);
  EXPECT_TRUE(out.ok) << out.message;
}

TEST(HostAllocators, SharedMemoryFileSizeLimitSaysWhatToChange) {
  const auto out = probe::run_in_child(
      []() -> std::string {
        signal(SIGXFSZ, SIG_IGN);
        rlimit rl{64 * 1024, RLIM_INFINITY};
        if (setrlimit(RLIMIT_FSIZE, &rl) != 0) return "setrlimit failed";
        const std::size_t fds = probe::open_file_descriptors();
        try {
          (void)Storage::allocate(1 << 20, Device::cpu(), MemoryKind::shared);
          return "no error";
        } catch (const ResourceExhausted& e) {
          const std::string m = e.what();
          for (const char* want : {"1048576 bytes", "shared memory", "RLIMIT_FSIZE is 64.0 KiB", "ulimit -f"}) {
            if (m.find(want) == std::string::npos) return "message lacks '" + std::string(want) + "': " + m;
          }
        }
        if (probe::open_file_descriptors() != fds) return "the memfd leaked";
        return {};
      },
      30s);
  EXPECT_TRUE(out.ok) << out.message;
}

TEST(HostAllocators, HostMemoryExhaustionNamesTheLimits) {
  const auto out = probe::run_in_child(
      []() -> std::string {
        rlimit rl{};
        getrlimit(RLIMIT_AS, &rl);
        FILE* f = std::fopen("/proc/self/statm", "r");
        unsigned long long pages = 0;
        if (f == nullptr || std::fscanf(f, "%llu", &pages) != 1) return "cannot read statm";
        std::fclose(f);
        rl.rlim_cur = pages * 4096ULL + (64ULL << 20);
        if (setrlimit(RLIMIT_AS, &rl) != 0) return "setrlimit failed";
        try {
          (void)Storage::allocate(std::size_t{1} << 30);
          return "no error";
        } catch (const ResourceExhausted& e) {
          const std::string m = e.what();
          for (const char* want : {"1073741824 bytes", "mmap", "RLIMIT_AS", "MemAvailable"}) {
            if (m.find(want) == std::string::npos) return "message lacks '" + std::string(want) + "': " + m;
          }
        }
        return {};
      },
      30s);
  EXPECT_TRUE(out.ok) << out.message;
}

TEST(HostAllocators, ReplaceableAllocator) {
  struct Counting final : Allocator {
    explicit Counting(Allocator& wrapped) : inner(wrapped) {}
    Allocator& inner;
    int calls = 0;
    DataPtr allocate(std::size_t n) override {
      ++calls;
      return inner.allocate(n);
    }
    MemoryKind kind() const noexcept override { return MemoryKind::pageable; }
  } counting(host_allocator(MemoryKind::pageable));
  EXPECT_EQ(set_host_allocator(MemoryKind::pageable, &counting), nullptr);
  { Storage s = Storage::allocate(10); }
  EXPECT_EQ(counting.calls, 1);
  EXPECT_EQ(set_host_allocator(MemoryKind::pageable, nullptr), &counting);
  { Storage s = Storage::allocate(10); }
  EXPECT_EQ(counting.calls, 1);
  EXPECT_THROW((void)host_allocator(MemoryKind::device), InvalidArgument);
}

}  // namespace
}  // namespace stagekit
