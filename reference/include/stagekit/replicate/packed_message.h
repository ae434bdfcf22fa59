// stagekit/replicate/packed_message.h — a packed state dict as a message between ranks: the one
// framing behind the replication wire protocol (point to point, replica_transport.h) and
// stagekit::dist::broadcast_state_dict (a broadcast from one rank to all).
//
// A message is a head, then storages. The head is a 40-byte preamble (magic "SKRW", the format
// version, a status, the length of the body that follows it, the storage count and the payload
// bytes) followed by its body. With status ok the body is the manifest (packed_state_dict.h) and
// every storage the manifest names follows in id order, whole (the replication transport sends
// each in chunks of at most kMessageChunkBytes, the broadcast each in one piece); with status error the body is the
// sender's reason for having no state dict and nothing follows. Layout: reference/replicate/FORMAT.md, "Messages".
//
// Invariants:
//   * a reader checks before it allocates: message_body_bytes() the preamble (magic, version,
//     status, reserved bytes), read_message_head() in addition the body length against the head
//     and the manifest's header and storage table against the preamble's count and payload bytes.
//     unpack_state_dict() then checks the manifest's nodes. A malformed head is a CorruptionError
//     "<what> from rank <r>: ..." (or the manifest's own "manifest at offset N: ..."), never a read
//     past its end;
//   * a head with status error is a CommunicationError "rank <r> sent no state dict: <reason>";
//   * the bytes are those of format version kFormatMajor.kFormatMinor: all integers little-endian.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate {

inline constexpr std::size_t kPreambleBytes = 40;
// The largest piece the replication transport sends a storage in.
inline constexpr std::size_t kMessageChunkBytes = std::size_t{8} << 20;

// The head of a message carrying `packed`: the preamble, then the manifest.
[[nodiscard]] std::vector<std::byte> message_head(const PackedStateDict& packed);
// The head of a message saying that the sender has no state dict to send, and why.
[[nodiscard]] std::vector<std::byte> error_message_head(std::string_view reason);

// The length of the body that follows a preamble (the first kPreambleBytes bytes of a head; a
// shorter span is corrupt), after checking its magic, version, status and reserved bytes. For
// transports that must know the head's size before they receive it. `what` and `sender` name the
// message in errors ("replica", 3: "replica from rank 3: ...").
[[nodiscard]] std::uint64_t message_body_bytes(std::span<const std::byte> preamble, std::string_view what, int sender);

struct MessageHead {
  std::span<const std::byte> manifest;       // inside the head given to read_message_head()
  std::vector<std::uint64_t> storage_sizes;  // the storages that follow the head, in id order
};

// Checks a whole head (see the invariants above) and returns its manifest and the sizes of the
// storages that follow it.
[[nodiscard]] MessageHead read_message_head(std::span<const std::byte> head, std::string_view what, int sender);

}  // namespace stagekit::replicate
