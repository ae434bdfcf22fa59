// stagekit/dist/value_codec.h — a byte encoding of state-dict values, for sending non-tensor
// entries (and small tensors) between ranks.
//
// Encodes none, bool, int, float, string, bytes, tensors (dtype, sizes and the elements in row-major
// order; decoded as contiguous CPU tensors), lists, tuples, dicts (string and integer keys, in order)
// and objects (type name, frozen flag, fields). DTensors, ShardedTensors and opaque values are
// refused with Unsupported naming the path. Decoding checks every length against the buffer and
// throws CorruptionError naming the offset on truncated or malformed input; it never reads past the
// end. Shared nodes are encoded once per reference (no identity is kept).
#pragma once

#include <cstddef>
#include <span>
#include <vector>

#include "stagekit/core/value.h"

namespace stagekit::dist {

[[nodiscard]] std::vector<std::byte> encode_value(const Value& value);
[[nodiscard]] Value decode_value(std::span<const std::byte> bytes);

}  // namespace stagekit::dist
