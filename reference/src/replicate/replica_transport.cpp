// The replication wire protocol (replica_transport.h): the heads one after the other, then both
// payloads at once, every storage in bounded chunks, in place.
#include "stagekit/replicate/replica_transport.h"

#include <algorithm>
#include <memory>

#include "stagekit/core/error.h"

namespace stagekit::replicate {
namespace {

void require_host_transport(const dist::Communicator& comm) {
  if (comm.backend() == "nccl") {
    throw Unsupported("replication moves host memory: use a thread-world or MPI communicator, not NCCL");
  }
}

// Appends the chunks of `storage` (host memory) to `out`.
template <class Byte>
void append_chunks(const Storage& storage, std::vector<std::span<Byte>>& out) {
  auto* data = static_cast<Byte*>(storage.data());
  const std::size_t total = storage.nbytes();
  for (std::size_t offset = 0; offset < total; offset += kReplicaChunkBytes) {
    out.emplace_back(data + offset, std::min(kReplicaChunkBytes, total - offset));
  }
}

// What the transfer's requests read and write: kept alive by the communicator until they are done,
// even after a timeout.
struct TransferMemory {
  std::vector<Storage> sent;
  std::vector<Storage> received;
};

}  // namespace

std::vector<std::byte> exchange_heads(dist::Communicator& comm, std::span<const std::byte> mine, int partner) {
  require_host_transport(comm);
  std::vector<std::byte> theirs;
  if (comm.rank() < partner) {
    comm.send(mine, partner, kReplicaTag);
    theirs = comm.recv_any_size(partner, kReplicaTag);
  } else {
    theirs = comm.recv_any_size(partner, kReplicaTag);
    comm.send(mine, partner, kReplicaTag);
  }
  return theirs;
}

ReceivedStateDict exchange_storages(dist::Communicator& comm, const PackedStateDict& mine, const MessageHead& theirs,
                                    int partner, HostBufferPool& pool) {
  require_host_transport(comm);
  auto memory = std::make_shared<TransferMemory>();
  memory->sent.reserve(mine.storages.size());
  for (const Storage& storage : mine.storages) {
    if (storage.device().is_cpu()) {
      memory->sent.push_back(storage);
    } else {
      Storage host = pool.take(storage.nbytes());
      copy_bytes(host, 0, storage, 0, storage.nbytes());
      memory->sent.push_back(std::move(host));
    }
  }
  memory->received.reserve(theirs.storage_sizes.size());
  for (const std::uint64_t size : theirs.storage_sizes) {
    memory->received.push_back(pool.take(static_cast<std::size_t>(size)));
  }
  std::vector<std::span<const std::byte>> sends;
  for (const Storage& storage : memory->sent) append_chunks(storage, sends);
  std::vector<std::span<std::byte>> recvs;
  for (const Storage& storage : memory->received) append_chunks(storage, recvs);
  comm.send_recv(partner, sends, recvs, kReplicaTag + 1, memory);

  ReceivedStateDict received;
  received.manifest.assign(theirs.manifest.begin(), theirs.manifest.end());
  received.storages = memory->received;
  return received;
}

}  // namespace stagekit::replicate
