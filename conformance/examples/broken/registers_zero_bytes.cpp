// registers_zero_bytes.cpp — BROKEN: zero-byte storages page-locked when the threshold is 0.
// A storage is page-locked when it holds at least pin_memory_min_bytes bytes, without the "and more
// than zero" (upstream's ">= threshold" test, spec C.1.5), through an allocator that rounds every
// page-locked allocation up to whole pages: with pin_memory_min_bytes=0 each zero-byte storage gets
// a page of its own, page-locked for nothing (with CUDA, registering its zero-length range fails).
// Every storage with bytes is staged and pinned as it should be.
#include <sys/mman.h>
#include <unistd.h>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {
namespace {

std::size_t page_size() { return static_cast<std::size_t>(sysconf(_SC_PAGESIZE)); }

void unmap_page(void* data, void* /*context*/) noexcept { munmap(data, page_size()); }

class RegistersZeroBytes final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    const bool pin = config_.pin_memory && nbytes >= config_.pin_memory_min_bytes;  // the flaw: 0 >= 0
    if (!pin || nbytes > 0) return MinimalStager::allocate_buffer(nbytes);
    // Zero bytes rounded up to one page, and that page locked.
    void* page = mmap(nullptr, page_size(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED) throw ResourceExhausted("mmap of one page failed");
    if (mlock(page, page_size()) != 0) {
      munmap(page, page_size());
      throw ResourceExhausted("mlock of one page failed");
    }
    return Storage::from_data_ptr(DataPtr(page, 0, Device::cpu(), MemoryKind::pinned, nullptr, &unmap_page));
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<RegistersZeroBytes>("example-broken-registers-zero-bytes");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
