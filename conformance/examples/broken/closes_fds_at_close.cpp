// closes_fds_at_close.cpp — BROKEN: close() takes the shared memory of results still in use out of
// reach. With share_memory, each buffer is a memfd mapped MAP_SHARED whose descriptor is kept (so that
// another process can be sent it) and closed when the buffer goes; close() also closes the descriptor
// of every buffer still alive, to "release everything". The mappings stay, so every result still reads right, and a
// result dropped after close() leaves nothing behind; but a result still held is shared memory no other process can
// reach any more: what close() may drop is the stager's cache, never what its results hold.
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {
namespace {

struct Buffer {
  std::size_t nbytes;
  std::shared_ptr<int> fd;  // -1 once closed (by close() or by the buffer's end)
};

void release_buffer(void* data, void* context) noexcept {
  auto* buffer = static_cast<Buffer*>(context);
  munmap(data, buffer->nbytes);
  if (*buffer->fd >= 0) ::close(*buffer->fd);
  *buffer->fd = -1;
  delete buffer;
}

class ClosesFdsAtClose final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;
  ~ClosesFdsAtClose() override { close_descriptors(); }
  ClosesFdsAtClose(const ClosesFdsAtClose&) = delete;
  ClosesFdsAtClose& operator=(const ClosesFdsAtClose&) = delete;

  void close() override {
    MinimalStager::close();
    close_descriptors();  // the flaw: results still held lose the descriptor that made them reachable
  }

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    if (!config_.share_memory || nbytes == 0) return MinimalStager::allocate_buffer(nbytes);
    const int fd = memfd_create("example-shared", MFD_CLOEXEC);
    if (fd < 0) throw ResourceExhausted("memfd_create failed");
    void* p = MAP_FAILED;
    if (ftruncate(fd, static_cast<off_t>(nbytes)) == 0)
      p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      ::close(fd);
      throw ResourceExhausted("cannot map " + std::to_string(nbytes) + " shared bytes");
    }
    const bool pin = config_.pin_memory && nbytes >= config_.pin_memory_min_bytes;
    if (pin && syscall(SYS_mlock, p, nbytes) != 0) {
      munmap(p, nbytes);
      ::close(fd);
      throw ResourceExhausted("mlock failed");
    }
    auto cell = std::make_shared<int>(fd);
    descriptors_.push_back(cell);
    const MemoryKind kind = pin ? MemoryKind::pinned_shared : MemoryKind::shared;
    return Storage::from_data_ptr(
        DataPtr(p, nbytes, Device::cpu(), kind, new Buffer{nbytes, std::move(cell)}, &release_buffer));
  }

 private:
  void close_descriptors() {
    for (const std::weak_ptr<int>& weak : descriptors_) {
      if (const std::shared_ptr<int> fd = weak.lock(); fd && *fd >= 0) {
        ::close(*fd);
        *fd = -1;
      }
    }
    descriptors_.clear();
  }
  std::vector<std::weak_ptr<int>> descriptors_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ClosesFdsAtClose>("example-broken-closes-fds-at-close");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
