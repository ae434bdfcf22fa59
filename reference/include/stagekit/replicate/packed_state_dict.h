// stagekit/replicate/packed_state_dict.h — a state dict as a manifest plus the distinct storages its
// tensors use: stagekit's one serialization of state-dict trees, behind the messages between ranks
// (packed_message.h: the replication wire protocol and dist::broadcast_state_dict) and the replica
// file.
//
// pack_state_dict() walks the tree once. Every distinct storage (by identity, exactly as staging
// keeps sharing) gets one storage id and is carried once, whole; each tensor records its dtype,
// sizes, strides, storage offset, storage id and attributes, so views and storage sharing between
// leaves are rebuilt exactly on the other side. A node reached twice (the same tensor, list, dict,
// object, DTensor or ShardedTensor object) is recorded once and referenced again, so identity
// survives too. DTensors carry their spec and rank; ShardedTensors their local shards, shard
// metadata and global metadata. Dict subclasses, namedtuples, sets and objects with __slots__ keep
// their kind and type information. A parameter (nn.Parameter) is packed as the plain tensor it
// holds, or refused when PackOptions::refuse_parameters says so. Opaque leaves are refused
// (Unsupported, naming the state-dict path); a cycle is an InvalidArgument naming the path.
//
// unpack_state_dict() verifies the manifest completely before building anything: every length,
// count, id and enum value is checked against the buffer and the storages, and a malformed manifest
// is a CorruptionError naming the byte offset and what was wrong — never a crash, a read past the
// end or a silently wrong tree. The manifest layout is documented in reference/replicate/FORMAT.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "stagekit/core/storage.h"
#include "stagekit/core/value.h"

namespace stagekit::replicate {

// The manifest (and replica file) format version this build writes. Readers accept the same major
// version and any minor version up to their own.
inline constexpr std::uint16_t kFormatMajor = 1;
// 1.1: dict subclasses, namedtuples, sets, objects with __slots__; 1.2: a defaultdict's default_factory.
inline constexpr std::uint16_t kFormatMinor = 2;

struct PackedStateDict {
  std::vector<std::byte> manifest;                             // the encoded tree (FORMAT.md, "Manifest")
  std::vector<Storage> storages;                               // distinct storages, indexed by storage id; any device
  [[nodiscard]] std::uint64_t payload_bytes() const noexcept;  // sum of storages[i].nbytes()
};

struct PackOptions {
  // A parameter leaf is an InvalidArgument naming its path (the replication stager's choice, as
  // upstream's transport refuses tensor subclasses: spec C.3.9).
  bool refuse_parameters = false;
};

[[nodiscard]] PackedStateDict pack_state_dict(const Value& state_dict, const PackOptions& options = {});

// The byte size of every storage the manifest refers to, in id order (validates the manifest
// header and storage table; CorruptionError naming the offset otherwise).
[[nodiscard]] std::vector<std::uint64_t> manifest_storage_sizes(std::span<const std::byte> manifest);

struct UnpackOptions {
  // When set, every ShardedTensor's local shards are placed on this rank (placement
  // "rank:<r>/cpu"), and the ShardedTensor belongs to it, as upstream's transport does on receipt.
  // The global metadata is kept as sent.
  std::optional<int> shard_placement_rank;
};

// Rebuilds the tree over `storages` (host storages of exactly the manifest's sizes, in id order).
[[nodiscard]] Value unpack_state_dict(std::span<const std::byte> manifest, std::span<const Storage> storages,
                                      const UnpackOptions& options = {});

}  // namespace stagekit::replicate
