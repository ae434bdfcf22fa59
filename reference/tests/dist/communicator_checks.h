// Backend-independent checks of a Communicator, shared by the thread-world and MPI tests. Each check
// is collective: every rank of `comm` calls it, in the same order, and it reports failures with
// GoogleTest's non-fatal EXPECT_* (so that no rank returns early and leaves the others waiting).
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <exception>
#include <string>
#include <vector>

#include "stagekit/dist/communicator.h"

namespace stagekit::dist::testing {

// Bytes i of rank r's payload: a pattern that differs per rank and per position.
[[nodiscard]] std::vector<std::byte> pattern(int rank, std::size_t n);
// The `parts` that `text` does not contain, quoted and comma-separated (empty: all present).
[[nodiscard]] std::string missing_parts(const std::string& text, const std::vector<std::string>& parts);

// Expects `f()` to throw E whose what() contains every one of `parts`.
template <class E, class F>
void expect_error(F&& f, const std::vector<std::string>& parts, const std::string& context) {
  try {
    f();
    ADD_FAILURE() << context << ": no exception was thrown";
  } catch (const E& e) {
    const std::string missing = missing_parts(e.what(), parts);
    EXPECT_TRUE(missing.empty()) << context << ": the message '" << e.what() << "' lacks " << missing;
  } catch (const std::exception& e) {
    ADD_FAILURE() << context << ": unexpected exception: " << e.what();
  }
}

void check_identity(Communicator& comm, const std::string& backend);
void check_point_to_point(Communicator& comm);
void check_broadcast(Communicator& comm);
void check_all_gather(Communicator& comm);
void check_all_gather_v(Communicator& comm);
// all_gather_into of unequal and equal sizes, with and without a memory owner.
void check_all_gather_into(Communicator& comm);
// send_recv between the pairs (0, 1), (2, 3), ...: several messages (one empty) with and without an
// owner, nothing, one way only, and a peer outside the world.
void check_send_recv(Communicator& comm);
// broadcast_many of three items (one empty) from the last rank, with and without an owner.
void check_broadcast_many(Communicator& comm);
// Sizes that differ on rank 0: CommunicationError on every rank (the communicator may be broken).
void check_broadcast_many_mismatch(Communicator& comm);
// MPI only (everything in flight at once): a message longer or shorter than its receive is a
// CommunicationError on the receiving rank (both ranks of a pair here); the communicator is broken.
void check_send_recv_size_mismatch(Communicator& comm);
void check_send_recv_short_message(Communicator& comm);
void check_all_reduce(Communicator& comm);
void check_barrier(Communicator& comm);
void check_split(Communicator& comm);
void check_tensor_helpers(Communicator& comm);
// Sizes, dtypes or collectives that differ between ranks: CommunicationError on every rank, and the
// communicator stays usable.
void check_mismatches(Communicator& comm);

}  // namespace stagekit::dist::testing
