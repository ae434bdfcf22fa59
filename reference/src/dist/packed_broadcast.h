// packed_broadcast.h — a state-dict tree from one rank to every rank of a communicator, as one
// packed message (stagekit/replicate/packed_message.h) carried by broadcasts: the preamble, then the
// body it announces, then every distinct storage, whole, all of them in one coalesced broadcast
// (Communicator::broadcast_many), in place.
//
// Every rank returns the tree unpacked with the root's sizes, strides and offsets: views of one
// storage on the root are views of one storage on every rank. The root's tree is built over its own
// host storages, sent as they are (upstream's rank 0 keeps its full tensors too): it copies only
// storages in device memory, to host. Every other rank's tree is built over new host storages, one
// per distinct storage of the root's tree, taken from `pool` when one is given (buffers of earlier
// results, reused still faulted in), else freshly allocated.
// Receivers check the message (packed_message.h, then unpack_state_dict()) before they allocate
// for it or build from it: a malformed message is a CorruptionError.
#pragma once

#include <functional>

#include "stagekit/core/host_buffer_pool.h"
#include "stagekit/core/value.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::dist::detail {

// Collective over `comm`. `pack` runs on `root` only and gives the packed tree to send; when it
// throws, the message carries its reason instead, the root rethrows the exception once the others
// have it, and every other rank throws CommunicationError("rank <root> sent no state dict: ...").
// Host memory only: the communicator must move host memory (thread world or MPI).
[[nodiscard]] Value broadcast_packed(Communicator& comm, int root,
                                     const std::function<replicate::PackedStateDict()>& pack,
                                     HostBufferPool* pool = nullptr);

}  // namespace stagekit::dist::detail
