// stagekit/replicate/replica_file.h — the replica file: a persisted state dict that is either read
// back exactly or rejected with a precise error.
//
// Layout (reference/replicate/FORMAT.md): a fixed header (magic, format version, ranks, sizes,
// its own checksum), the manifest (packed_state_dict.h) with its checksum, a storage table (offset,
// length, checksum of every blob), then the storage blobs, each starting on a 4096-byte boundary so
// that it can be mapped. Checksums are XXH3-64 (Debian's libxxhash). Padding must be zero.
//
// Invariants:
//   * write_replica() never leaves a partial file under `path`: it writes `path` + ".tmp", fsyncs
//     it, renames it over `path` and fsyncs the directory. On any failure (disk full, file-size
//     limit, I/O error) it removes the temporary file, leaves a previous file at `path` untouched,
//     and throws IoError naming the path, the operation and the byte offset reached.
//   * decode/load verify every byte that carries meaning — header, version, manifest, table, every
//     blob checksum, zero padding, the exact file size — before returning a tree. A truncated,
//     corrupted, wrong-version or partially written file is a CorruptionError naming the part
//     ("blob 3", "manifest", "header"), its offset and what did not match. An unreadable file is an
//     IoError. No allocation is larger than the file itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate {

inline constexpr std::size_t kBlobAlignment = 4096;

struct ReplicaWriteOptions {
  int source_rank = -1;  // the rank whose state dict this is (-1: unknown)
  int holder_rank = -1;  // the rank that keeps the replica (-1: unknown)
  bool sync = true;      // fsync the file and its directory (false only for benchmarks of the copy)
};

struct ReplicaInfo {
  std::uint16_t version_major = 0;
  std::uint16_t version_minor = 0;
  int source_rank = -1;
  int holder_rank = -1;
  std::uint64_t file_bytes = 0;
  std::uint64_t manifest_bytes = 0;
  std::uint64_t payload_bytes = 0;
  std::size_t storages = 0;
};

// The temporary file write_replica() uses for `path`.
[[nodiscard]] std::filesystem::path replica_temporary_path(const std::filesystem::path& path);

// Writes `packed` atomically to `path` (see the invariants above). Storages on a device are copied
// to the host blob by blob. Returns the file's size.
std::uint64_t write_replica(const std::filesystem::path& path, const PackedStateDict& packed,
                            const ReplicaWriteOptions& options = {});

// The whole file in memory: the same bytes write_replica() puts on disk.
[[nodiscard]] std::vector<std::byte> encode_replica(const PackedStateDict& packed,
                                                    const ReplicaWriteOptions& options = {});

// Verifies and decodes a replica held in memory; tensors land in new CPU storages.
[[nodiscard]] Value decode_replica(std::span<const std::byte> file_bytes, ReplicaInfo* info = nullptr);

// Reads, verifies and decodes the replica at `path`.
[[nodiscard]] Value load_replica(const std::filesystem::path& path, ReplicaInfo* info = nullptr);

// Verifies the replica at `path` completely and describes it (without building the tree).
[[nodiscard]] ReplicaInfo inspect_replica(const std::filesystem::path& path);

}  // namespace stagekit::replicate
