// closes_shared_fds.cpp — BROKEN: shared memory another process can reach. With share_memory, each
// buffer is a memfd mapped MAP_SHARED whose descriptor is closed right after mapping (to stay far
// from the open-files limit). The mapping is shared and a forked child sees its writes, but no other
// process can ever map it: it has no name and no descriptor is left to send (torch's
// file_descriptor strategy keeps it; a process started by spawn, as checkpointing's background
// process is, can only receive memory that way).
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <string>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {
namespace {

void release_mapping(void* data, void* context) noexcept {
  munmap(data, reinterpret_cast<std::size_t>(context));  // also unlocks its pages
}

class ClosesSharedFds final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    if (!config_.share_memory || nbytes == 0) return MinimalStager::allocate_buffer(nbytes);
    const bool pin = config_.pin_memory && nbytes >= config_.pin_memory_min_bytes;
    const int fd = memfd_create("example-shared", MFD_CLOEXEC);
    if (fd < 0) throw ResourceExhausted("memfd_create failed");
    void* p = MAP_FAILED;
    if (ftruncate(fd, static_cast<off_t>(nbytes)) == 0)
      p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);  // the flaw: the mapping keeps the memory, but nothing is left to send to another process
    if (p == MAP_FAILED) throw ResourceExhausted("cannot map " + std::to_string(nbytes) + " shared bytes");
    if (pin && syscall(SYS_mlock, p, nbytes) != 0) {
      munmap(p, nbytes);
      throw ResourceExhausted("mlock failed");
    }
    const MemoryKind kind = pin ? MemoryKind::pinned_shared : MemoryKind::shared;
    return Storage::from_data_ptr(
        DataPtr(p, nbytes, Device::cpu(), kind, reinterpret_cast<void*>(nbytes), &release_mapping));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ClosesSharedFds>("example-broken-closes-shared-fds");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
