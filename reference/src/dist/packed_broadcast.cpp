// packed_broadcast.cpp — broadcast_packed(): a packed message from the root, broadcast in place,
// unpacked on every rank.
#include "packed_broadcast.h"

#include <algorithm>
#include <exception>
#include <memory>
#include <span>
#include <vector>

#include "backend_common.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/replicate/packed_message.h"

namespace stagekit::dist::detail {

Value broadcast_packed(Communicator& comm, int root, const std::function<replicate::PackedStateDict()>& pack,
                       HostBufferPool* pool) {
  using replicate::kPreambleBytes;
  constexpr std::string_view kWhat = "state dict broadcast";
  check_root(comm, root, "broadcast_packed");
  if (comm.backend() == "nccl") {
    throw Unsupported("a state dict is broadcast in host memory: use a thread-world or MPI communicator, not NCCL");
  }
  const bool is_root = comm.rank() == root;

  // 1. The head: the preamble first (fixed size), then the body it announces.
  replicate::PackedStateDict packed;
  std::vector<std::byte> head(kPreambleBytes);
  std::exception_ptr pack_error;
  if (is_root) {
    try {
      packed = pack();
      head = replicate::message_head(packed);
    } catch (const std::exception& e) {
      pack_error = std::current_exception();
      head = replicate::error_message_head(e.what());
    }
  }
  comm.broadcast(std::span(head).first(kPreambleBytes), root);
  const std::uint64_t body = replicate::message_body_bytes(head, kWhat, root);
  head.resize(kPreambleBytes + static_cast<std::size_t>(body));
  comm.broadcast(std::span(head).subspan(kPreambleBytes), root);
  if (pack_error) std::rethrow_exception(pack_error);  // the others have the reason now
  const replicate::MessageHead checked = replicate::read_message_head(head, kWhat, root);

  // 2. Every storage, whole, in one coalesced broadcast, in place. The root's result is built over
  //    its own host storages (as upstream's rank 0 keeps its full tensors): it sends them as they
  //    are and copies nothing. A storage in device memory is copied to host first and sent from
  //    there. Every other rank receives into new host storages.
  struct Memory {
    std::vector<Storage> storages;  // what the result is built over, every rank
  };
  auto memory = std::make_shared<Memory>();
  std::vector<std::span<std::byte>> items;
  for (std::size_t i = 0; i < checked.storage_sizes.size(); ++i) {
    const auto size = static_cast<std::size_t>(checked.storage_sizes[i]);
    if (is_root && packed.storages[i].device().is_cpu()) {
      memory->storages.push_back(packed.storages[i]);
    } else {
      Storage& storage = memory->storages.emplace_back(pool != nullptr ? pool->take(size) : Storage::allocate(size));
      if (is_root) copy_bytes(storage, 0, packed.storages[i], 0, size);
    }
    items.emplace_back(static_cast<std::byte*>(memory->storages.back().data()), size);
  }
  comm.broadcast_many(items, root, memory);
  std::vector<Storage> storages = std::move(memory->storages);
  return replicate::unpack_state_dict(checked.manifest, storages);
}

}  // namespace stagekit::dist::detail
