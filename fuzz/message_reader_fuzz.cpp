// message_reader_fuzz.cpp — libFuzzer target for the receiving side of a packed message
// (fuzz/README.md): what broadcast_state_dict and the replication wire protocol decode.
//
// The input is a message head (stagekit/replicate/packed_message.h: the 40-byte preamble, then the
// manifest). The target does what a receiver does: read_message_head(), storages of the announced
// sizes, unpack_state_dict() (plain, then as a replication receiver, with the ShardedTensor
// placement option). The contract under test: each step either returns or throws a
// stagekit::Error, for any input whatsoever; it never crashes, reads out of bounds, leaks, hangs, or
// makes an allocation out of proportion to the input. Checked as in replica_reader_fuzz.cpp
// (fuzz_support.h): ASan/UBSan, LeakSanitizer, only stagekit::Error caught, the allocation bound
// over the decoding, and a sound decoded tree.
//
// The storages' bytes come from the sender and are never interpreted, so the target zero-fills
// them. A receiver allocates whatever the checked head announces; here storages of up to
// kMaxRealStorageBytes in all get real memory and their tensors' bytes are read under ASan, larger
// ones are placeholders that hold no memory (the nodes are still checked against their sizes).
// No checksum guards a message, so libFuzzer's own mutations reach the decoder directly.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

#include "fuzz_support.h"
#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_message.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace {

constexpr std::uint64_t kMaxRealStorageBytes = std::uint64_t{1} << 20;

std::vector<stagekit::Storage> storages_for(const std::vector<std::uint64_t>& sizes, bool real) {
  using stagekit::Storage;
  std::vector<Storage> out;
  out.reserve(sizes.size());
  for (const std::uint64_t size : sizes) {
    const auto n = static_cast<std::size_t>(size);
    if (real) {
      out.push_back(Storage::allocate(n));
      if (n > 0) std::memset(out.back().data(), 0, n);
    } else {
      out.push_back(Storage::from_data_ptr(
          stagekit::DataPtr(nullptr, n, stagekit::Device::cpu(), stagekit::MemoryKind::pageable, nullptr, nullptr)));
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  stagekit::fuzz::install_allocation_hook("stagekit_message_fuzz", "read_message_head/unpack_state_dict");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace rp = stagekit::replicate;
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  try {
    stagekit::fuzz::AllocationBound bound(size);
    const rp::MessageHead head = rp::read_message_head(bytes, "fuzz input", 0);
    std::uint64_t total = 0;
    for (const std::uint64_t s : head.storage_sizes) total += s;  // read_message_head: no overflow
    if (head.storage_sizes.size() > size) stagekit::fuzz::fail("more storages announced than the input has bytes");
    const bool real = total <= kMaxRealStorageBytes;
    const std::vector<stagekit::Storage> storages = storages_for(head.storage_sizes, real);
    const stagekit::Value tree = rp::unpack_state_dict(head.manifest, storages);
    rp::UnpackOptions as_replica;
    as_replica.shard_placement_rank = 1;
    const stagekit::Value placed = rp::unpack_state_dict(head.manifest, storages, as_replica);
    bound.release();
    stagekit::fuzz::check_tree(tree, real);
    stagekit::fuzz::check_tree(placed, real);
  } catch (const stagekit::Error&) {
    // The documented way to refuse an input. Any other exception escapes: a crash for libFuzzer.
  }
  return 0;
}
