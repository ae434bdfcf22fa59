// The replication wire protocol (replica_transport.h): a preamble and the manifest in one message,
// then every storage in bounded chunks. A rank that cannot send its state dict sends an error
// preamble instead, so that its partner fails at once with the reason rather than timing out.
#include "stagekit/replicate/replica_transport.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "stagekit/core/error.h"

namespace stagekit::replicate {
namespace {

constexpr std::uint32_t kWireMagic = 0x5752'4b53;  // "SKRW" little-endian
constexpr std::uint32_t kStatusOk = 0;
constexpr std::uint32_t kStatusError = 1;

// Fixed preamble in front of the manifest (or of an error message).
struct Preamble {
  std::uint32_t magic = kWireMagic;
  std::uint16_t version_major = kFormatMajor;
  std::uint16_t version_minor = kFormatMinor;
  std::uint32_t status = kStatusOk;
  std::uint32_t reserved = 0;
  std::uint64_t body_bytes = 0;  // manifest (or error message) length
  std::uint64_t storage_count = 0;
  std::uint64_t payload_bytes = 0;
};
static_assert(sizeof(Preamble) == 40);

std::vector<std::byte> frame(const Preamble& preamble, std::span<const std::byte> body) {
  std::vector<std::byte> message(sizeof(Preamble) + body.size());
  std::memcpy(message.data(), &preamble, sizeof(Preamble));
  if (!body.empty()) std::memcpy(message.data() + sizeof(Preamble), body.data(), body.size());
  return message;
}

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
  Preamble preamble;
  preamble.body_bytes = packed.manifest.size();
  preamble.storage_count = packed.storages.size();
  preamble.payload_bytes = packed.payload_bytes();
  const std::vector<std::byte> head = frame(preamble, packed.manifest);
  comm.send(head, dst, kReplicaTag);
  for (const Storage& storage : packed.storages) send_storage(comm, storage, dst);
  return head.size() + preamble.payload_bytes;
}

void send_packing_error(dist::Communicator& comm, std::string_view message, int dst) {
  Preamble preamble;
  preamble.status = kStatusError;
  preamble.body_bytes = message.size();
  comm.send(frame(preamble, std::as_bytes(std::span(message.data(), message.size()))), dst, kReplicaTag);
}

ReceivedStateDict recv_packed(dist::Communicator& comm, int src) {
  const std::vector<std::byte> head = comm.recv_any_size(src, kReplicaTag);
  auto corrupt = [&](const std::string& what) {
    return CorruptionError(fmt::format("replica from rank {}: {}", src, what));
  };
  if (head.size() < sizeof(Preamble)) {
    throw corrupt(fmt::format("a {}-byte first message is shorter than the {}-byte preamble", head.size(),
                              sizeof(Preamble)));
  }
  Preamble preamble;
  std::memcpy(&preamble, head.data(), sizeof(Preamble));
  if (preamble.magic != kWireMagic) throw corrupt(fmt::format("bad magic {:#010x}", preamble.magic));
  if (preamble.version_major != kFormatMajor || preamble.version_minor > kFormatMinor) {
    throw corrupt(fmt::format("format version {}.{}, this reader reads {}.0 to {}.{}", preamble.version_major,
                              preamble.version_minor, kFormatMajor, kFormatMajor, kFormatMinor));
  }
  if (preamble.body_bytes != head.size() - sizeof(Preamble)) {
    throw corrupt(fmt::format("the preamble announces {} bytes after it but the message has {}", preamble.body_bytes,
                              head.size() - sizeof(Preamble)));
  }
  const std::span<const std::byte> body(head.data() + sizeof(Preamble), head.size() - sizeof(Preamble));
  if (preamble.status == kStatusError) {
    throw CommunicationError(fmt::format("rank {} sent no state dict: {}", src,
                                         std::string_view(reinterpret_cast<const char*>(body.data()), body.size())));
  }
  if (preamble.status != kStatusOk) throw corrupt(fmt::format("unknown status {}", preamble.status));

  ReceivedStateDict received;
  received.manifest.assign(body.begin(), body.end());
  const std::vector<std::uint64_t> sizes = manifest_storage_sizes(received.manifest);
  std::uint64_t total = 0;
  for (std::uint64_t s : sizes) total += s;
  if (sizes.size() != preamble.storage_count || total != preamble.payload_bytes) {
    throw corrupt(fmt::format("the preamble announces {} storages of {} bytes but the manifest lists {} of {} bytes",
                              preamble.storage_count, preamble.payload_bytes, sizes.size(), total));
  }
  received.storages.reserve(sizes.size());
  for (std::uint64_t size : sizes) {
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
