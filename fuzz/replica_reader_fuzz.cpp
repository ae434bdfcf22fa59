// replica_reader_fuzz.cpp — libFuzzer target for the replica reader (fuzz/README.md).
//
// The contract under test (stagekit/replicate/replica_file.h): decode_replica() either returns a
// tree or throws a stagekit::Error (CorruptionError and friends), for any input whatsoever. It never
// crashes, reads out of bounds, leaks, hangs, or makes an allocation out of proportion to the input.
//
// How each part of the contract is checked:
//   * crashes, out-of-bounds reads, use-after-free, undefined behaviour: ASan and UBSan (the whole
//     fuzz build is instrumented, -fno-sanitize-recover=all), reported by libFuzzer as a crash;
//   * leaks: LeakSanitizer, which libFuzzer runs on inputs that allocated more than they freed;
//   * exceptions: only stagekit::Error is caught here; anything else (std::bad_alloc,
//     std::length_error, std::out_of_range, ...) escapes and libFuzzer reports it as a crash;
//   * allocations: a sanitizer malloc hook aborts on any single allocation made by the reader that
//     is larger than kAllocationFactor * input size + kAllocationSlack (a length field believed
//     before it was checked against the input; fuzz_support.h); libFuzzer's -malloc_limit_mb is
//     the coarse backstop;
//   * a decoded tree must be sound: every tensor in it addresses only bytes inside its storage
//     (touched through ASan, fuzz_support.h), and the reported ReplicaInfo matches the input's size.
//
// Checksums: every part of a replica is checksummed (XXH3-64), so almost every blind mutation is
// refused at the first checksum and never reaches the manifest decoder. The custom mutator below
// therefore "reseals" three mutations out of four: after libFuzzer's mutation it sets the header's
// file size to the input's size and recomputes the blob, table, manifest and header checksums
// wherever the header's offsets point inside the input. The saved crash inputs are the resealed
// bytes, so they reproduce without the mutator. The layout constants are those of FORMAT.md
// (reference/src/replicate/replica_file.cpp); if the layout changes, resealing silently stops
// helping (the coverage drops) but nothing breaks.
#include <xxhash.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "fuzz_support.h"
#include "stagekit/core/error.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/replica_file.h"

namespace {

// ---- resealing (see the top of this file) ----------------------------------------------------------

constexpr std::size_t kHeaderBytes = 128;
constexpr std::size_t kManifestBytesOffset = 32;
constexpr std::size_t kManifestChecksumOffset = 40;
constexpr std::size_t kTableOffsetOffset = 48;
constexpr std::size_t kStorageCountOffset = 56;
constexpr std::size_t kTableChecksumOffset = 64;
constexpr std::size_t kFileBytesOffset = 80;
constexpr std::size_t kHeaderChecksumOffset = 120;
constexpr std::size_t kTableEntryBytes = 24;  // offset, length, checksum

std::uint64_t load_u64(const std::uint8_t* p) {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}

void store_u64(std::uint8_t* p, std::uint64_t v) { std::memcpy(p, &v, sizeof v); }

// True when [offset, offset + length) lies inside [0, size).
bool inside(std::uint64_t offset, std::uint64_t length, std::size_t size) {
  return offset <= size && length <= size - offset;
}

void reseal(std::uint8_t* data, std::size_t size) {
  if (size < kHeaderBytes) return;
  store_u64(data + kFileBytesOffset, size);
  const std::uint64_t manifest_bytes = load_u64(data + kManifestBytesOffset);
  if (inside(kHeaderBytes, manifest_bytes, size)) {
    store_u64(data + kManifestChecksumOffset, XXH3_64bits(data + kHeaderBytes, manifest_bytes));
  }
  const std::uint64_t table_offset = load_u64(data + kTableOffsetOffset);
  const std::uint64_t count = load_u64(data + kStorageCountOffset);
  if (count <= size / kTableEntryBytes && inside(table_offset, count * kTableEntryBytes, size)) {
    std::uint8_t* table = data + table_offset;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::uint8_t* entry = table + i * kTableEntryBytes;
      const std::uint64_t blob_offset = load_u64(entry);
      const std::uint64_t blob_bytes = load_u64(entry + 8);
      if (inside(blob_offset, blob_bytes, size)) store_u64(entry + 16, XXH3_64bits(data + blob_offset, blob_bytes));
    }
    store_u64(data + kTableChecksumOffset, XXH3_64bits(table, count * kTableEntryBytes));
  }
  store_u64(data + kHeaderChecksumOffset, XXH3_64bits(data, kHeaderChecksumOffset));
}

}  // namespace

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  size = LLVMFuzzerMutate(data, size, max_size);
  if (seed % 4 != 0) reseal(data, size);
  return size;
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  stagekit::fuzz::install_allocation_hook("stagekit_replica_fuzz", "decode_replica");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  stagekit::replicate::ReplicaInfo info;
  try {
    stagekit::fuzz::AllocationBound bound(size);
    const stagekit::Value tree = stagekit::replicate::decode_replica(bytes, &info);
    bound.release();
    if (info.file_bytes != size)
      stagekit::fuzz::fail("decode_replica accepted an input but reported another file size");
    stagekit::fuzz::check_tree(tree);
  } catch (const stagekit::Error&) {
    // The documented way to refuse an input. Any other exception escapes: a crash for libFuzzer.
  }
  return 0;
}
