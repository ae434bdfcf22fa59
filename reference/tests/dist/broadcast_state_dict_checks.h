// Checks of broadcast_state_dict shared by the thread-world and MPI tests. Each check is collective:
// every rank of `comm` calls it, and it reports failures with GoogleTest's non-fatal EXPECT_* (so
// that no rank returns early and leaves the others waiting).
#pragma once

#include "stagekit/dist/communicator.h"

namespace stagekit::dist::testing {

// Views of one storage on rank 0 (a transpose, narrowed rows, a stepped slice, a 0-dim element,
// a view inside a list) arrive as views of one storage on every rank, with rank 0's sizes, strides,
// offsets and values; distinct storages stay distinct; rank 0's results are built over rank 0's own
// storages, every other rank's over new ones.
void check_broadcast_keeps_sharing(Communicator& comm);

// Rank 0 cannot pack its dict (an opaque leaf, or no dict): rank 0 throws the packing error, every
// other rank a CommunicationError with the reason; nobody waits for the timeout, and the
// communicator still works afterwards.
void check_broadcast_pack_errors(Communicator& comm);

}  // namespace stagekit::dist::testing
