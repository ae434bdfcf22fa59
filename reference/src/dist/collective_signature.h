// Internal: the signature each rank contributes before a collective (which collective, its sequence
// number on the communicator, and the sizes/root/dtype/colour that must agree), and the check that
// turns a disagreement into a CommunicationError naming the ranks and their values. Every backend
// exchanges signatures first, so a size mismatch or two ranks calling different collectives is an
// error on every rank instead of corrupted memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "stagekit/core/dtype.h"

namespace stagekit::dist::detail {

enum class CollectiveKind : std::int32_t {
  broadcast = 1,
  all_gather,
  all_gather_v,
  all_reduce,
  barrier,
  split,
  all_gather_into,  // key: sizes_digest() of the sizes every rank expects
  broadcast_many,   // nbytes: the total; key: sizes_digest() of the items' sizes
};

[[nodiscard]] std::string_view collective_name(CollectiveKind kind) noexcept;

// Plain bytes on the wire (every rank runs the same build, so the layout is the same).
struct Signature {
  std::int64_t seq = 0;     // collectives called so far on this communicator
  std::int32_t kind = 0;    // CollectiveKind
  std::int32_t root = -1;   // broadcast
  std::int64_t nbytes = 0;  // bytes contributed by this rank
  std::int32_t dtype = -1;  // all_reduce
  std::int32_t reduce_op = -1;
  std::int64_t color = 0;  // split
  std::int64_t key = 0;    // split
};
static_assert(sizeof(Signature) == 48 && std::is_trivially_copyable_v<Signature>);

[[nodiscard]] Signature make_signature(CollectiveKind kind, std::uint64_t seq, std::size_t nbytes = 0);
// A digest of a list of sizes (FNV-1a over their 64-bit values), to check that ranks agree on it.
[[nodiscard]] std::int64_t sizes_digest(std::span<const std::size_t> sizes) noexcept;
// The signature of broadcast_many (sequence number 0: the exchange sets it): the root, the total
// in nbytes and a digest of the items' sizes.
[[nodiscard]] Signature broadcast_many_signature(std::span<const std::span<std::byte>> items, int root);

// Throws CommunicationError (prefixed with `context`) when the signatures of the ranks (index = rank)
// disagree on anything the collective needs to agree on.
void check_signatures(std::span<const Signature> all, std::string_view context);

}  // namespace stagekit::dist::detail
