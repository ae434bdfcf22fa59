// packed_broadcast.h — a state-dict tree from one rank to every rank of a communicator, as one
// packed message (stagekit/replicate/packed_message.h) carried by broadcasts: the preamble, then the
// body it announces, then every distinct storage in chunks of at most kMessageChunkBytes.
//
// Every rank, the root included, returns the tree unpacked over new host storages, one per distinct
// storage of the root's tree: views of one storage on the root are views of one storage on every
// rank, with the root's sizes, strides and offsets, and nothing aliases the root's own memory.
// Receivers check the message (packed_message.h, then unpack_state_dict()) before they allocate
// for it or build from it: a malformed message is a CorruptionError.
#pragma once

#include <functional>

#include "stagekit/core/value.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::dist::detail {

// Collective over `comm`. `pack` runs on `root` only and gives the packed tree to send; when it
// throws, the message carries its reason instead, the root rethrows the exception once the others
// have it, and every other rank throws CommunicationError("rank <root> sent no state dict: ...").
// Host memory only: the communicator must move host memory (thread world or MPI).
[[nodiscard]] Value broadcast_packed(Communicator& comm, int root,
                                     const std::function<replicate::PackedStateDict()>& pack);

}  // namespace stagekit::dist::detail
