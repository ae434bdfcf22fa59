// stagekit/replicate/replica_transport.h — sending a packed state dict to one rank over a
// Communicator (the replication wire protocol).
//
// A transfer is one message of packed_message.h, point to point: its head (the preamble and the
// manifest) in one message on tag kReplicaTag; then every storage in id order, each in chunks of at
// most kReplicaChunkBytes, on tag kReplicaTag + 1. Each distinct storage crosses the wire once. The
// receiver checks the head (read_message_head(): preamble, body length, the manifest's storage
// table) before allocating anything, allocates exactly the announced storages in host memory and
// receives into them. Every receive is bounded by the communicator's timeout (TimeoutError naming
// the peer); a bad head is a CorruptionError ("replica from rank <r>: ..."). Storages not in host
// memory are sent through a host bounce buffer, so the communicator must move host memory (thread
// world or MPI; NCCL is Unsupported).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "stagekit/core/storage.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/replicate/packed_message.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate {

inline constexpr int kReplicaTag = 0x5250;  // 'RP'; data chunks use kReplicaTag + 1
inline constexpr std::size_t kReplicaChunkBytes = kMessageChunkBytes;

struct ReceivedStateDict {
  std::vector<std::byte> manifest;
  std::vector<Storage> storages;  // host memory, in id order
};

// Sends `packed` to rank `dst` of `comm`. Returns the bytes sent (preamble, manifest and storages).
std::uint64_t send_packed(dist::Communicator& comm, const PackedStateDict& packed, int dst);
// Tells rank `dst`, in place of a state dict, why this rank has none to send (it could not pack
// it): an error head; the receiver's recv_packed() then throws CommunicationError with `message`.
void send_packing_error(dist::Communicator& comm, std::string_view message, int dst);
// Receives one packed state dict from rank `src` of `comm`.
[[nodiscard]] ReceivedStateDict recv_packed(dist::Communicator& comm, int src);

}  // namespace stagekit::replicate
