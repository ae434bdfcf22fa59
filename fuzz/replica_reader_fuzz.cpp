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
//     before it was checked against the input); libFuzzer's -malloc_limit_mb is the coarse backstop;
//   * a decoded tree must be sound: every tensor in it addresses only bytes inside its storage
//     (touched through ASan), and the reported ReplicaInfo matches the input's size.
//
// Checksums: every part of a replica is checksummed (XXH3-64), so almost every blind mutation is
// refused at the first checksum and never reaches the manifest decoder. The custom mutator below
// therefore "reseals" three mutations out of four: after libFuzzer's mutation it sets the header's
// file size to the input's size and recomputes the blob, table, manifest and header checksums
// wherever the header's offsets point inside the input. The saved crash inputs are the resealed
// bytes, so they reproduce without the mutator. The layout constants are those of FORMAT.md
// (reference/src/replicate/replica_file.cpp); if the layout changes, resealing silently stops
// helping (the coverage drops) but nothing breaks.
#include <sanitizer/allocator_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>
#include <xxhash.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <unordered_set>
#include <vector>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/replica_file.h"

namespace {

// A valid replica can legitimately need more memory than its size in a single allocation (a list of
// N one-byte `none` nodes becomes a vector of N Values), but only by a bounded factor.
constexpr std::size_t kAllocationFactor = 64;
constexpr std::size_t kAllocationSlack = std::size_t{1} << 20;

// The largest single allocation allowed right now; 0 outside decode_replica().
std::atomic<std::size_t> g_allocation_limit{0};
std::atomic<bool> g_reporting{false};
// Where touch() puts the bytes it reads, so that the reads are not optimised away.
volatile unsigned char g_sink = 0;

void write_stderr(const char* text, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(2, text, n);
    if (w <= 0) return;
    text += w;
    n -= static_cast<std::size_t>(w);
  }
}

void malloc_hook(const volatile void*, std::size_t size) {
  const std::size_t limit = g_allocation_limit.load(std::memory_order_relaxed);
  if (limit == 0 || size <= limit || g_reporting.exchange(true)) return;
  char message[256];
  const int n = std::snprintf(message, sizeof message,
                              "==stagekit_replica_fuzz== ERROR: decode_replica allocated %zu bytes in one "
                              "allocation; the limit for this input is %zu bytes (%zu x input + %zu)\n",
                              size, limit, kAllocationFactor, kAllocationSlack);
  write_stderr(message, n > 0 ? static_cast<std::size_t>(n) : 0);
  __sanitizer_print_stack_trace();
  std::abort();  // libFuzzer reports a deadly signal and saves the input as crash-<sha1>
}

void free_hook(const volatile void*) {}

[[noreturn]] void fail(const char* what) {
  g_allocation_limit.store(0);
  std::fprintf(stderr, "==stagekit_replica_fuzz== ERROR: %s\n", what);
  __sanitizer_print_stack_trace();
  std::abort();
}

// Reads the first and the last byte a tensor can address, so that ASan reports a tensor whose
// layout reaches past the memory actually allocated for its storage.
void touch(const stagekit::Tensor& t) {
  if (!t.defined() || t.numel() == 0) return;
  const stagekit::Storage& storage = t.storage();
  if (!storage.defined()) fail("a decoded tensor with elements has no storage");
  if (!storage.device().is_cpu()) fail("decode_replica returned a tensor that is not on the CPU");
  const std::size_t offset_bytes = static_cast<std::size_t>(t.storage_offset()) * t.element_size();
  const std::size_t addressed = t.addressed_bytes();
  if (offset_bytes > storage.nbytes() || addressed > storage.nbytes() - offset_bytes) {
    fail("a decoded tensor addresses bytes past the end of its storage");
  }
  const auto* base = static_cast<const volatile unsigned char*>(storage.data()) + offset_bytes;
  g_sink = static_cast<unsigned char>(base[0] ^ base[addressed - 1]);
}

// Visits every node once (the tree is a DAG; shared nodes are visited once), without recursion.
void check_tree(const stagekit::Value& root) {
  using stagekit::Value;
  std::vector<Value> pending{root};
  std::unordered_set<const void*> seen;
  while (!pending.empty()) {
    const Value v = std::move(pending.back());
    pending.pop_back();
    if (const void* id = v.identity(); id != nullptr && !seen.insert(id).second) continue;
    switch (v.kind()) {
      case Value::Kind::tensor: {
        const stagekit::Tensor& t = v.as_tensor();
        touch(t);
        for (const auto& [name, attr] : t.attrs()) pending.push_back(attr);
        break;
      }
      case Value::Kind::list:
        for (const Value& item : v.as_list().items) pending.push_back(item);
        break;
      case Value::Kind::tuple:
        for (const Value& item : v.as_tuple().items()) pending.push_back(item);
        break;
      case Value::Kind::dict:
        for (const auto& [key, item] : v.as_dict().entries()) pending.push_back(item);
        break;
      case Value::Kind::object:
        for (const auto& [name, field] : v.as_object().fields()) pending.push_back(field);
        break;
      case Value::Kind::dtensor:
        touch(v.as_dtensor_node()->local());
        break;
      case Value::Kind::sharded_tensor:
        for (const auto& shard : v.as_sharded_tensor_node()->local_shards()) touch(shard.tensor);
        break;
      case Value::Kind::opaque:
        fail("decode_replica returned an opaque leaf, which the format cannot carry");
      default:
        break;
    }
  }
}

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
  __sanitizer_install_malloc_and_free_hooks(malloc_hook, free_hook);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::byte> bytes(reinterpret_cast<const std::byte*>(data), size);
  stagekit::replicate::ReplicaInfo info;
  try {
    g_allocation_limit.store(kAllocationFactor * size + kAllocationSlack);
    const stagekit::Value tree = stagekit::replicate::decode_replica(bytes, &info);
    g_allocation_limit.store(0);
    if (info.file_bytes != size) fail("decode_replica accepted an input but reported another file size");
    check_tree(tree);
  } catch (const stagekit::Error&) {
    // The documented way to refuse an input. Any other exception escapes: a crash for libFuzzer.
    g_allocation_limit.store(0);
  }
  return 0;
}
