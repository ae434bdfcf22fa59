// unlocks_neighbours.cpp — BROKEN: page-locking undone under buffers still in use. Small pinned
// buffers are packed next to each other (64-byte aligned) in arenas of 64 KiB, and each is locked
// with mlock(2) of its own range; when a buffer goes, munlock(2) of its own range undoes that. But
// page-locking does not nest: munlock unlocks every page of the range, so the end of one buffer (a
// stage that fails rolls its new buffers back; a dead source's entry goes) unlocks the buffers that
// share its first or last page while results still hold them.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstddef>
#include <memory>
#include <string>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {
namespace {

constexpr std::size_t kArenaBytes = 64 * 1024;
constexpr std::size_t kAlign = 64;

// One mapping that small buffers are carved from; unmapped when the last of them and the stager let go.
struct Arena {
  void* base = MAP_FAILED;
  int fd = -1;  // the memfd of a shared arena, kept so that another process can be sent it
  std::size_t used = 0;
  explicit Arena(bool shared) {
    if (shared) {
      fd = memfd_create("example-arena", MFD_CLOEXEC);
      if (fd >= 0 && ftruncate(fd, kArenaBytes) == 0)
        base = mmap(nullptr, kArenaBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } else {
      base = mmap(nullptr, kArenaBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (base == MAP_FAILED) {
      if (fd >= 0) ::close(fd);
      throw ResourceExhausted("cannot map an arena of " + std::to_string(kArenaBytes) + " bytes");
    }
  }
  ~Arena() {
    munmap(base, kArenaBytes);
    if (fd >= 0) ::close(fd);
  }
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;
};

struct Piece {
  std::shared_ptr<Arena> arena;
  void* data;
  std::size_t nbytes;
};

void release_piece(void* /*data*/, void* context) noexcept {
  auto* piece = static_cast<Piece*>(context);
  syscall(SYS_munlock, piece->data, piece->nbytes);  // the flaw: unlocks the pages it shares with others
  delete piece;
}

class UnlocksNeighbours final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;
  void close() override {
    MinimalStager::close();
    arena_.reset();
  }

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    const bool pin = config_.pin_memory && nbytes > 0 && nbytes >= config_.pin_memory_min_bytes;
    if (!pin || nbytes > kArenaBytes / 4) return MinimalStager::allocate_buffer(nbytes);
    const std::size_t size = (nbytes + kAlign - 1) / kAlign * kAlign;
    if (!arena_ || arena_->used + size > kArenaBytes) arena_ = std::make_shared<Arena>(config_.share_memory);
    void* p = static_cast<char*>(arena_->base) + arena_->used;
    arena_->used += size;
    if (syscall(SYS_mlock, p, nbytes) != 0) throw ResourceExhausted("mlock failed");
    auto* piece = new Piece{arena_, p, nbytes};
    const MemoryKind kind = config_.share_memory ? MemoryKind::pinned_shared : MemoryKind::pinned;
    return Storage::from_data_ptr(DataPtr(p, nbytes, Device::cpu(), kind, piece, &release_piece));
  }

 private:
  std::shared_ptr<Arena> arena_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<UnlocksNeighbours>("example-broken-unlocks-neighbours");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
