// Internal helpers shared by the Communicator backends: argument checks with uniform messages, the
// "broken communicator" state, time formatting and a polling back-off.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stagekit/core/dtype.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist::detail {

using Clock = std::chrono::steady_clock;

// "1234 ms".
[[nodiscard]] std::string format_duration(Clock::duration d);
// "1, 3, 4" (or "none").
[[nodiscard]] std::string format_ranks(std::span<const int> ranks);
// "mpi communicator (rank 1 of 4)": the prefix of every error message of a backend.
[[nodiscard]] std::string describe_communicator(const Communicator& comm);

// InvalidArgument unless 0 <= peer < size() and peer != rank() (no backend sends to itself).
void check_peer(const Communicator& comm, int peer, std::string_view op);
void check_root(const Communicator& comm, int root, std::string_view op);
void check_tag(const Communicator& comm, int tag, std::string_view op);
void check_reduce_arguments(const Communicator& comm, std::size_t nbytes, DType dtype, ReduceOp op);
void check_color(const Communicator& comm, int color);
// InvalidArgument unless out.size() == comm.size() * local_bytes.
void check_all_gather_sizes(const Communicator& comm, std::size_t local_bytes, std::size_t out_bytes);
// all_gather_into: InvalidArgument unless there is one size per rank and out_bytes is their sum
// (local_bytes == sizes[rank()] is checked by every rank from the exchanged contributions).
void check_all_gather_into_sizes(const Communicator& comm, std::size_t local_bytes, std::size_t out_bytes,
                                 std::span<const std::size_t> sizes);
// all_gather_into: CommunicationError naming the ranks whose contribution (their byte count, as
// received or signed) differs from the size this rank expects of them.
void check_received_sizes(const Communicator& comm, std::span<const std::size_t> got,
                          std::span<const std::size_t> expected);
void check_received_sizes(const Communicator& comm, const std::vector<std::vector<std::byte>>& blocks,
                          std::span<const std::size_t> expected);

// Once a blocking operation timed out the communicator is broken: later operations throw
// CommunicationError naming the first failure.
class BrokenState {
 public:
  [[nodiscard]] bool broken() const noexcept { return !reason_.empty(); }
  void mark(std::string reason) {
    if (reason_.empty()) reason_ = std::move(reason);
  }
  // Throws CommunicationError when broken.
  void throw_if_broken(const Communicator& comm, std::string_view op) const;

 private:
  std::string reason_;
};

// Paces a polling loop that waits for peers: for its first few milliseconds it only yields (peers
// a little late are seen at once, so that ranks leave a collective together), then it sleeps,
// 20 us growing to 1 ms (a peer that is late by more is not kept waiting on a busy core).
class Backoff {
 public:
  static constexpr std::chrono::milliseconds kSpin{5};
  void pause();

 private:
  Clock::time_point spin_until_ = Clock::now() + kSpin;
  std::chrono::microseconds sleep_{20};
};

}  // namespace stagekit::dist::detail
