// drops_copy_tail.cpp — BROKEN: a fast copy of large storages that forgets the remainder.
// Storages of 1 MiB and more are copied in 64 KiB blocks, split between two threads; the bytes after
// the last whole block are never copied. Every storage whose size is a multiple of 64 KiB (each
// power of two from there up) is staged exactly; any other large one ends in stale or zero bytes.
#include <cstddef>
#include <thread>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

constexpr std::size_t kFastPathBytes = std::size_t{1} << 20;
constexpr std::size_t kBlock = std::size_t{64} << 10;

class DropsCopyTail final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  void copy_storage(const Storage& staged, const Storage& source) override {
    const std::size_t n = source.nbytes();
    if (n < kFastPathBytes) return MinimalStager::copy_storage(staged, source);
    const std::size_t whole = n / kBlock * kBlock;  // the flaw: n % kBlock bytes are never copied
    const std::size_t half = whole / kBlock / 2 * kBlock;
    std::thread second([&] { stagekit::copy_bytes(staged, half, source, half, whole - half); });
    stagekit::copy_bytes(staged, 0, source, 0, half);
    second.join();
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<DropsCopyTail>("example-broken-drops-copy-tail");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
