// The probes must tell locked from unlocked, shared from private, before they judge implementations.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "stagekit/core/cuda.h"
#include "stagekit/testing/leak_check.h"
#include "stagekit/testing/memory_probe.h"
#include "stagekit/testing/run_in_child.h"

namespace stagekit::probe {
namespace {

constexpr std::size_t kBytes = 1 << 20;

struct Mapped {
  void* p = nullptr;
  int fd = -1;
  Mapped(int flags, int fd_in) : fd(fd_in) {
    p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, flags, fd, 0);
    EXPECT_NE(p, MAP_FAILED);
    std::memset(p, 1, kBytes);
  }
  ~Mapped() {
    munmap(p, kBytes);
    if (fd >= 0) close(fd);
  }
};

int memfd_of(std::size_t n) {
  const int fd = memfd_create("probe-test", MFD_CLOEXEC);
  EXPECT_EQ(ftruncate(fd, static_cast<off_t>(n)), 0);
  return fd;
}

TEST(MemoryProbe, LockedOnlyAfterMlock) {
  if (cuda::available()) GTEST_SKIP() << "with a CUDA device, page_locked() asks the driver instead of smaps";
  Mapped m(MAP_PRIVATE | MAP_ANONYMOUS, -1);
  EXPECT_FALSE(page_locked(m.p, kBytes).yes);
  ASSERT_EQ(syscall(SYS_mlock, m.p, kBytes), 0);  // not mlock(): sanitizers make it a no-op
  const Verdict v = page_locked(m.p, kBytes);
  EXPECT_TRUE(v.yes) << v.detail;
  EXPECT_GE(locked_bytes(), kBytes);
  // Only half locked is not locked.
  ASSERT_EQ(syscall(SYS_munlock, static_cast<char*>(m.p) + kBytes / 2, kBytes / 2), 0);
  EXPECT_FALSE(page_locked(m.p, kBytes).yes);
  EXPECT_TRUE(page_locked(m.p, kBytes / 2).yes);
}

// With a device, the CUDA driver's view: VmLck does not show what cudaHostAlloc and
// cudaHostRegister pin, so leak checks count it from the driver (driver_locked_bytes()).
TEST(MemoryProbe, DriverViewSeesHostAllocAndRegisteredPagesUntilReleased) {
  if (!cuda::available()) GTEST_SKIP() << cuda::availability().reason;
  const std::uint64_t before = driver_locked_bytes();
  void* pinned = cuda::host_alloc(kBytes);
  std::memset(pinned, 1, kBytes);
  const Verdict allocated = driver_page_locked(pinned, kBytes);
  EXPECT_TRUE(allocated.yes) << allocated.detail;
  EXPECT_GE(driver_locked_bytes(), before + kBytes);
  {
    const Mapped m(MAP_PRIVATE | MAP_ANONYMOUS, -1);
    EXPECT_FALSE(driver_page_locked(m.p, kBytes).yes);
    cuda::host_register(m.p, kBytes / 2);
    const Verdict half = driver_page_locked(m.p, kBytes / 2);
    EXPECT_TRUE(half.yes) << half.detail;
    EXPECT_TRUE(page_locked(m.p, kBytes / 2).yes) << "page_locked() asks the driver where a device is usable";
    EXPECT_FALSE(driver_page_locked(m.p, kBytes).yes) << "only the first half is registered";
    EXPECT_GE(driver_locked_bytes(), before + kBytes + kBytes / 2);
    cuda::host_unregister(m.p);
    EXPECT_FALSE(driver_page_locked(m.p, kBytes / 2).yes);
  }
  cuda::host_free(pinned);
  EXPECT_EQ(driver_locked_bytes(), before);
}

TEST(MemoryProbe, DriverViewIsEmptyWithoutADevice) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is usable here";
  const Mapped m(MAP_PRIVATE | MAP_ANONYMOUS, -1);
  ASSERT_EQ(syscall(SYS_mlock, m.p, kBytes), 0);
  EXPECT_FALSE(driver_page_locked(m.p, kBytes).yes) << "mlock() is not the driver's";
  EXPECT_EQ(driver_locked_bytes(), 0u);
  EXPECT_TRUE(driver_page_locked(m.p, 0).yes) << "an empty range is vacuously locked";
}

TEST(MemoryProbe, SharedMeansANamedSharedMapping) {
  Mapped priv(MAP_PRIVATE | MAP_ANONYMOUS, -1);
  Mapped anon_shared(MAP_SHARED | MAP_ANONYMOUS, -1);
  Mapped memfd_private(MAP_PRIVATE, memfd_of(kBytes));
  Mapped memfd_shared(MAP_SHARED, memfd_of(kBytes));
  EXPECT_FALSE(shared_mapping(priv.p, kBytes).yes);
  EXPECT_FALSE(shared_mapping(anon_shared.p, kBytes).yes)
      << "anonymous shared memory cannot be opened by another process";
  EXPECT_FALSE(shared_mapping(memfd_private.p, kBytes).yes);
  const Verdict v = shared_mapping(memfd_shared.p, kBytes);
  EXPECT_TRUE(v.yes) << v.detail;
  EXPECT_GE(shared_object_mappings(), 1U);
}

// Shared memory another process can still reach: through a descriptor this process holds, or a name;
// a memfd whose descriptor was closed after mapping is reachable only by forked children.
TEST(MemoryProbe, SharedMeansReachableByAnotherProcess) {
  Mapped kept(MAP_SHARED, memfd_of(kBytes));
  const Verdict with_fd = shared_mapping(kept.p, kBytes);
  EXPECT_TRUE(with_fd.yes) << with_fd.detail;
  EXPECT_NE(with_fd.detail.find(fmt::format("descriptor {}", kept.fd)), std::string::npos) << with_fd.detail;

  Mapped closed(MAP_SHARED, memfd_of(kBytes));
  ASSERT_EQ(close(closed.fd), 0);
  closed.fd = -1;
  const Verdict without = shared_mapping(closed.p, kBytes);
  EXPECT_FALSE(without.yes) << without.detail;
  EXPECT_NE(without.detail.find("no other process can reach"), std::string::npos) << without.detail;
  EXPECT_TRUE(fork_write_visible(closed.p, kBytes).yes) << "a forked child still shares it";

  const std::string name = fmt::format("/stagekit-probe-test-{}", getpid());
  const int named_fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(named_fd, 0);
  ASSERT_EQ(ftruncate(named_fd, static_cast<off_t>(kBytes)), 0);
  Mapped named(MAP_SHARED, named_fd);
  ASSERT_EQ(close(named.fd), 0);
  named.fd = -1;
  const Verdict by_name = shared_mapping(named.p, kBytes);
  EXPECT_TRUE(by_name.yes) << by_name.detail;
  EXPECT_NE(by_name.detail.find("its name"), std::string::npos) << by_name.detail;
  ASSERT_EQ(shm_unlink(name.c_str()), 0);
  EXPECT_FALSE(shared_mapping(named.p, kBytes).yes) << "unlinked, and no descriptor left";
}

TEST(MemoryProbe, ForkWritesAreVisibleOnlyThroughSharedMappings) {
  Mapped priv(MAP_PRIVATE | MAP_ANONYMOUS, -1);
  Mapped memfd_private(MAP_PRIVATE, memfd_of(kBytes));
  Mapped memfd_shared(MAP_SHARED, memfd_of(kBytes));
  EXPECT_FALSE(fork_write_visible(priv.p, kBytes).yes);
  EXPECT_FALSE(fork_write_visible(memfd_private.p, kBytes).yes);
  EXPECT_TRUE(fork_write_visible(memfd_shared.p, kBytes).yes);
  EXPECT_EQ(static_cast<unsigned char*>(memfd_shared.p)[0], 1) << "the probe must restore the bytes it changed";
  EXPECT_EQ(static_cast<unsigned char*>(memfd_shared.p)[kBytes - 1], 1);
}

TEST(MemoryProbe, UnmappedRangesAreNeitherLockedNorShared) {
  void* p = mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  munmap(p, kBytes);
  EXPECT_FALSE(shared_mapping(p, kBytes).yes);
  if (!cuda::available()) {
    EXPECT_FALSE(page_locked(p, kBytes).yes);
  }
}

std::string leak_names(const std::vector<Leak>& leaks) {
  std::string out;
  for (const Leak& l : leaks) out += (out.empty() ? "" : "; ") + l.what + ": " + l.detail;
  return out;
}

TEST(LeakCheck, NothingBetweenEqualSnapshots) {
  const ProcessResources now = ProcessResources::snapshot();
  EXPECT_TRUE(leaks_since(now, now).empty()) << leak_names(leaks_since(now, now));
}

TEST(LeakCheck, AShmNameNeverUnlinkedIsLeftBehindOnceNobodyUsesIt) {
  const ProcessResources before = ProcessResources::snapshot();
  const std::string name = fmt::format("/stagekit-leak-check-{}", getpid());
  const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR, 0600);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, kBytes), 0);
  {
    const Mapped m(MAP_SHARED, fd);  // mapped and open: in use, not left behind
    const auto in_use = leaks_since(before, ProcessResources::snapshot());
    EXPECT_TRUE(std::none_of(in_use.begin(), in_use.end(), [](const Leak& l) {
      return l.what == "shared-memory objects";
    })) << leak_names(in_use);
  }
  const auto leaks = leaks_since(before, ProcessResources::snapshot());
  shm_unlink(name.c_str());
  ASSERT_EQ(leaks.size(), 1u) << leak_names(leaks);
  EXPECT_EQ(leaks[0].what, "shared-memory objects");
  EXPECT_NE(leaks[0].detail.find("/dev/shm" + name), std::string::npos) << leaks[0].detail;
  EXPECT_TRUE(leaks_since(before, ProcessResources::snapshot()).empty());
}

TEST(LeakCheck, ASysvSegmentNeverRemovedIsLeftBehind) {
  const ProcessResources before = ProcessResources::snapshot();
  const int id = shmget(IPC_PRIVATE, kBytes, IPC_CREAT | 0600);
  if (id < 0) GTEST_SKIP() << "no SysV shared memory here: " << std::strerror(errno);
  void* p = shmat(id, nullptr, 0);
  ASSERT_NE(p, reinterpret_cast<void*>(-1));
  const auto attached = leaks_since(before, ProcessResources::snapshot());
  shmdt(p);
  const auto detached = leaks_since(before, ProcessResources::snapshot());
  shmctl(id, IPC_RMID, nullptr);
  // Attached, it is a shared mapping of this process; detached and never removed, it is left behind.
  ASSERT_EQ(attached.size(), 1u) << leak_names(attached);
  EXPECT_EQ(attached[0].what, "shared memory");
  ASSERT_EQ(detached.size(), 1u) << leak_names(detached);
  EXPECT_EQ(detached[0].what, "shared-memory objects");
  EXPECT_NE(detached[0].detail.find(fmt::format("SysV segment {}", id)), std::string::npos) << detached[0].detail;
  EXPECT_TRUE(leaks_since(before, ProcessResources::snapshot()).empty());
}

TEST(LeakCheck, LockedBytesAndDescriptorsCount) {
  const ProcessResources before = ProcessResources::snapshot();
  const int fd = memfd_of(kBytes);
  {
    const Mapped m(MAP_SHARED, dup(fd));
    ASSERT_EQ(syscall(SYS_mlock, m.p, kBytes), 0) << std::strerror(errno);
    const auto leaks = leaks_since(before, ProcessResources::snapshot());
    std::vector<std::string> what;
    for (const Leak& l : leaks) what.push_back(l.what);
    EXPECT_EQ(what, (std::vector<std::string>{"page-locked memory", "shared memory", "file descriptors"}))
        << leak_names(leaks);
  }
  close(fd);
  EXPECT_TRUE(leaks_since(before, ProcessResources::snapshot()).empty())
      << leak_names(leaks_since(before, ProcessResources::snapshot()));
}

TEST(LeakCheck, PagesPinnedThroughTheCudaDriverCount) {
  if (!cuda::available()) GTEST_SKIP() << cuda::availability().reason;
  const ProcessResources before = ProcessResources::snapshot();
  void* pinned = cuda::host_alloc(kBytes);
  std::memset(pinned, 1, kBytes);
  const auto leaks = leaks_since(before, ProcessResources::snapshot());
  const bool driver_view = std::any_of(leaks.begin(), leaks.end(), [](const Leak& l) {
    return l.what == "page-locked memory" && l.detail.find("CUDA driver") != std::string::npos;
  });
  EXPECT_TRUE(driver_view) << "cudaHostAlloc'd memory must count as a leak: " << leak_names(leaks);
  cuda::host_free(pinned);
  EXPECT_TRUE(leaks_since(before, ProcessResources::snapshot()).empty())
      << leak_names(leaks_since(before, ProcessResources::snapshot()));
}

TEST(ChildProcess, ReportsSuccessFailureCrashAndTimeout) {
  using namespace std::chrono_literals;
  EXPECT_TRUE(run_in_child([] { return std::string(); }, 10s).ok);
  const auto failed = run_in_child([] { return std::string("nope"); }, 10s);
  EXPECT_FALSE(failed.ok);
  EXPECT_EQ(failed.message, "nope");
  const auto crashed = run_in_child([]() -> std::string { abort(); }, 10s);
  EXPECT_FALSE(crashed.ok);
  EXPECT_NE(crashed.message.find("signal"), std::string::npos) << crashed.message;
  const auto hung = run_in_child(
      []() -> std::string {
        for (;;) pause();
      },
      1s);
  EXPECT_FALSE(hung.ok);
  EXPECT_NE(hung.message.find("killed"), std::string::npos) << hung.message;
}

}  // namespace
}  // namespace stagekit::probe
