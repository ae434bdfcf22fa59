// leaves_shm_names.cpp — BROKEN: shared memory left behind. With share_memory, each buffer is a POSIX
// shared-memory object (shm_open) mapped MAP_SHARED, so that another process can open it by its name.
// The name is never unlinked: once the stager is closed and its results are dropped, no process maps
// the objects any more, yet they stay in /dev/shm and hold their memory until the machine restarts or
// someone removes them by hand (what Python's resource tracker warns of as "leaked shared_memory
// objects"). Every buffer is shared, reachable and released by this process; only the system keeps it.
// Running it leaves /dev/shm/example-staged-<pid>-<n> behind (conformance/tests/
// examples_against_installed.sh removes them after its run).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <string>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {
namespace {

void unmap_only(void* data, void* context) noexcept {
  munmap(data, reinterpret_cast<std::size_t>(context));  // the flaw: the name stays in /dev/shm
}

class LeavesShmNames final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    if (!config_.share_memory || nbytes == 0) return MinimalStager::allocate_buffer(nbytes);
    static std::atomic<unsigned> serial{0};
    const std::string name = "/example-staged-" + std::to_string(getpid()) + "-" + std::to_string(serial++);
    const int fd = shm_open(name.c_str(), O_CREAT | O_EXCL | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) throw ResourceExhausted("shm_open failed for " + name);
    void* p = MAP_FAILED;
    if (ftruncate(fd, static_cast<off_t>(nbytes)) == 0)
      p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);  // the name is how another process opens it
    if (p == MAP_FAILED) {
      shm_unlink(name.c_str());
      throw ResourceExhausted("cannot map " + std::to_string(nbytes) + " shared bytes");
    }
    const bool pin = config_.pin_memory && nbytes >= config_.pin_memory_min_bytes;
    if (pin && syscall(SYS_mlock, p, nbytes) != 0) {
      munmap(p, nbytes);
      shm_unlink(name.c_str());
      throw ResourceExhausted("mlock failed");
    }
    const MemoryKind kind = pin ? MemoryKind::pinned_shared : MemoryKind::shared;
    return Storage::from_data_ptr(
        DataPtr(p, nbytes, Device::cpu(), kind, reinterpret_cast<void*>(nbytes), &unmap_only));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<LeavesShmNames>("example-broken-leaves-shm-names");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
