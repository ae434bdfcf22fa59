// stagekit/replicate/replica_transport.h — exchanging packed state dicts between two partner ranks
// over a Communicator (the replication wire protocol).
//
// A transfer is one message of packed_message.h each way. First the heads (the preamble and the
// manifest), one message each on tag kReplicaTag, the lower rank's first. A rank that cannot pack
// its state dict sends an error head instead, so that its partner fails at once with the reason
// rather than timing out; after an error head on either side no payload moves. Then both payloads
// at once (Communicator::send_recv, in place): every storage in id order, each in chunks of at most
// kReplicaChunkBytes, on tag kReplicaTag + 1. Each distinct storage crosses the wire once.
//
// The receiver checks the partner's head (read_message_head(): preamble, body length, the
// manifest's storage table) before allocating anything, and receives into exactly the announced
// storages, host memory taken from a HostBufferPool (buffers that came back from earlier replicas
// are reused, still faulted in). Every transfer is bounded by the communicator's timeout
// (TimeoutError naming the peer); a bad head is a CorruptionError ("replica from rank <r>: ...").
// Storages not in host memory are copied to host memory first, whole, so the communicator must move
// host memory (thread world or MPI; NCCL is Unsupported).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "stagekit/core/host_buffer_pool.h"
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

// Sends this rank's head (message_head() or error_message_head()) to `partner` and returns the
// partner's, unchecked; the lower rank sends first.
[[nodiscard]] std::vector<std::byte> exchange_heads(dist::Communicator& comm, std::span<const std::byte> mine,
                                                    int partner);

// Sends `mine`'s storages to `partner` and receives the storages its head announced, both at once.
// `theirs` is the partner's head, already checked by read_message_head().
[[nodiscard]] ReceivedStateDict exchange_storages(dist::Communicator& comm, const PackedStateDict& mine,
                                                  const MessageHead& theirs, int partner, HostBufferPool& pool);

}  // namespace stagekit::replicate
