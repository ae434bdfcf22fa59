// packed_broadcast.cpp — broadcast_packed(): a packed message from the root, broadcast in place,
// unpacked on every rank.
#include "packed_broadcast.h"

#include <algorithm>
#include <exception>
#include <future>
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

  // 2. Every storage, whole, into a new host storage on every rank, in one coalesced broadcast. The
  //    root sends its host storages in place and copies them into its own new storages meanwhile;
  //    a storage in device memory is copied to host first and sent from there.
  struct Memory {
    std::vector<Storage> sources;   // the root's packed storages
    std::vector<Storage> storages;  // the new ones, every rank
  };
  auto memory = std::make_shared<Memory>();
  memory->sources = std::move(packed.storages);
  std::vector<std::span<std::byte>> items;
  std::vector<std::size_t> copy_later;  // root: host sources, copied while the broadcast runs
  for (std::size_t i = 0; i < checked.storage_sizes.size(); ++i) {
    const auto size = static_cast<std::size_t>(checked.storage_sizes[i]);
    Storage& storage = memory->storages.emplace_back(pool != nullptr ? pool->take(size) : Storage::allocate(size));
    const Storage* send_from = &storage;
    if (is_root) {
      const Storage& source = memory->sources[i];
      if (source.device().is_cpu()) {
        send_from = &source;
        copy_later.push_back(i);
      } else {
        copy_bytes(storage, 0, source, 0, size);
      }
    }
    items.emplace_back(static_cast<std::byte*>(send_from->data()), size);
  }
  std::future<void> root_copies;
  if (!copy_later.empty()) {
    root_copies = std::async(std::launch::async, [memory, copy_later] {
      for (const std::size_t i : copy_later) {
        copy_bytes(memory->storages[i], 0, memory->sources[i], 0, memory->storages[i].nbytes());
      }
    });
  }
  try {
    comm.broadcast_many(items, root, memory);
  } catch (...) {
    if (root_copies.valid()) root_copies.wait();
    throw;
  }
  if (root_copies.valid()) root_copies.get();
  std::vector<Storage> storages = std::move(memory->storages);
  return replicate::unpack_state_dict(checked.manifest, storages);
}

}  // namespace stagekit::dist::detail
