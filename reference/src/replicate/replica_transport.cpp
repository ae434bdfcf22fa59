// The replication wire protocol (replica_transport.h): a packed state dict's message
// (packed_message.h) point to point: the head in one message, then every storage in bounded chunks.
// A rank that cannot send its state dict sends an error head instead, so that its partner fails at
// once with the reason rather than timing out.
#include "stagekit/replicate/replica_transport.h"

#include <algorithm>

#include "stagekit/core/error.h"
#include "stagekit/replicate/packed_message.h"

namespace stagekit::replicate {
namespace {

void send_storage(dist::Communicator& comm, const Storage& storage, int dst) {
  const std::size_t total = storage.nbytes();
  const bool host = storage.device().is_cpu();
  Storage bounce;
  if (!host && total > 0) bounce = Storage::allocate(std::min(total, kReplicaChunkBytes));
  for (std::size_t offset = 0; offset < total; offset += kReplicaChunkBytes) {
    const std::size_t n = std::min(kReplicaChunkBytes, total - offset);
    const std::byte* data = nullptr;
    if (host) {
      data = static_cast<const std::byte*>(storage.data()) + offset;
    } else {
      copy_bytes(bounce, 0, storage, offset, n);
      data = static_cast<const std::byte*>(bounce.data());
    }
    comm.send({data, n}, dst, kReplicaTag + 1);
  }
}

}  // namespace

std::uint64_t send_packed(dist::Communicator& comm, const PackedStateDict& packed, int dst) {
  if (comm.backend() == "nccl") {
    throw Unsupported("replication moves host memory: use a thread-world or MPI communicator, not NCCL");
  }
  const std::vector<std::byte> head = message_head(packed);
  comm.send(head, dst, kReplicaTag);
  for (const Storage& storage : packed.storages) send_storage(comm, storage, dst);
  return head.size() + packed.payload_bytes();
}

void send_packing_error(dist::Communicator& comm, std::string_view message, int dst) {
  comm.send(error_message_head(message), dst, kReplicaTag);
}

ReceivedStateDict recv_packed(dist::Communicator& comm, int src) {
  const std::vector<std::byte> head = comm.recv_any_size(src, kReplicaTag);
  const MessageHead checked = read_message_head(head, "replica", src);
  ReceivedStateDict received;
  received.manifest.assign(checked.manifest.begin(), checked.manifest.end());
  received.storages.reserve(checked.storage_sizes.size());
  for (const std::uint64_t size : checked.storage_sizes) {
    Storage storage = Storage::allocate(static_cast<std::size_t>(size));
    auto* data = static_cast<std::byte*>(storage.data());
    for (std::size_t offset = 0; offset < size; offset += kReplicaChunkBytes) {
      const std::size_t n = std::min<std::size_t>(kReplicaChunkBytes, size - offset);
      comm.recv({data + offset, n}, src, kReplicaTag + 1);
    }
    received.storages.push_back(std::move(storage));
  }
  return received;
}

}  // namespace stagekit::replicate
