// manifest_format.h — the manifest's constants (magic, node tags, key kinds, limits) and its header
// (magic, version, storage table), shared by the encoder and the decoder. FORMAT.md, "Manifest".
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "byte_io.h"

namespace stagekit::replicate::detail {

inline constexpr std::uint32_t kManifestMagic = 0x464D4B53;  // "SKMF" as little-endian bytes
inline constexpr std::size_t kManifestHeaderBytes = 16;      // magic, major, minor, storage count

// One byte per node: the kind in the low 7 bits; kReferable marks a node that later back-references
// may name (it gets the next node index when it starts).
enum class NodeTag : std::uint8_t {
  none = 0,
  boolean = 1,
  integer = 2,
  floating = 3,
  string = 4,
  bytes = 5,
  tensor = 6,
  list = 7,
  tuple = 8,
  dict = 9,
  object = 10,
  dtensor = 11,
  sharded_tensor = 12,
  reference = 13,
  // Format 1.1:
  typed_dict = 14,    // a dict subclass: its type name, then a dict's body
  named_tuple = 15,   // a namedtuple: its type name, then one (field name, node) per item
  set = 16,           // a set or frozenset: the frozen flag, then a list's body
  slots_object = 17,  // an object with __slots__: an object's body without the frozen flag
  // Format 1.2:
  default_dict = 18,  // a dict subclass with a default factory: its type name, the factory's, a dict's body
};
inline constexpr std::uint8_t kReferable = 0x80;
inline constexpr std::uint8_t kLastNodeTag = 18;

enum class KeyKind : std::uint8_t { string = 0, integer = 1 };

// The storage id of a tensor without a storage (an empty tensor over an undefined storage).
inline constexpr std::uint64_t kNoStorage = ~std::uint64_t{0};
// The deepest node (the root has depth 0): deeper trees are refused when packing and corrupt when
// unpacking, so that neither side can overflow its stack.
inline constexpr int kMaxNesting = 1000;
// Sizes, strides, offsets and global shapes are below 2^62, so that sums of two never overflow.
inline constexpr std::int64_t kMaxExtent = std::int64_t{1} << 62;

// Why a reader of this build refuses format version major.minor ("format version 2.0, this reader
// reads 1.x"), or an empty string when it reads it.
[[nodiscard]] std::string version_problem(std::uint16_t major, std::uint16_t minor);

void write_manifest_header(ByteWriter& out, std::span<const std::uint64_t> storage_sizes);
// Reads and checks the magic, the version (same major, minor <= ours) and the storage table.
[[nodiscard]] std::vector<std::uint64_t> read_manifest_header(ByteReader& in);

}  // namespace stagekit::replicate::detail
