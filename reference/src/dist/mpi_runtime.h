// Internal: the MPI plumbing under the MPI backend (built only with STAGEKIT_HAVE_MPI).
//
//   * initialize_if_needed(): MPI_Init_thread (MPI_THREAD_MULTIPLE requested) when nobody initialised
//     MPI, and then MPI_Finalize at exit;
//   * ByteType: n bytes as (count, datatype) with an int count, for messages of 2 GiB and more;
//   * Operation: the non-blocking requests of one operation and the buffers they use. wait() polls
//     MPI_Test until the deadline. Requests still pending when the Operation dies (timeout, error)
//     are "abandoned": receives are cancelled, and each request stays, with the buffers it may still
//     read or write, in a process-wide list until MPI completes it (swept at every later operation
//     and at exit; only abandoned collectives and matched receives hold up MPI_Finalize). This is why the backend moves
//     data through buffers it owns: an operation given up at a timeout never touches the caller's memory afterwards.
#pragma once

#include <mpi.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "backend_common.h"

namespace stagekit::dist::mpi_detail {

using detail::Clock;

[[nodiscard]] std::string error_text(int rc);
// CommunicationError("<call> failed: <MPI error string>") unless rc == MPI_SUCCESS.
void check(int rc, std::string_view call);

void initialize_if_needed();
[[nodiscard]] bool is_initialized() noexcept;
[[nodiscard]] bool is_finalized() noexcept;

// Completes or drops abandoned requests that MPI finished since the last sweep.
void sweep_abandoned() noexcept;

class ByteType {
 public:
  explicit ByteType(std::size_t nbytes);
  ~ByteType();
  ByteType(const ByteType&) = delete;
  ByteType& operator=(const ByteType&) = delete;
  [[nodiscard]] int count() const noexcept { return count_; }
  [[nodiscard]] MPI_Datatype type() const noexcept { return type_; }

 private:
  int count_ = 0;
  MPI_Datatype type_ = MPI_BYTE;
  bool owned_ = false;
};

// Several buffers as one MPI message: an hindexed datatype over their absolute addresses, used
// with MPI_BOTTOM. Open MPI moves such a message in one pipelined transfer, where separate messages
// for many small buffers each pay their own protocol. Every piece must be at most INT_MAX bytes.
// With `extent`, the type's extent is that many bytes (lower bound 0): in an all-gather, where rank
// r's copy of a receive type lands r extents further, pieces of equal length b and extent b put
// rank r's piece i at piece i's address + r * b.
class ScatteredBytes {
 public:
  explicit ScatteredBytes(std::span<const std::span<std::byte>> pieces, std::optional<std::size_t> extent = {});
  ~ScatteredBytes();
  ScatteredBytes(const ScatteredBytes&) = delete;
  ScatteredBytes& operator=(const ScatteredBytes&) = delete;
  [[nodiscard]] MPI_Datatype type() const noexcept { return type_; }
  // Whether `pieces` fit (each at most INT_MAX bytes, at most INT_MAX pieces).
  [[nodiscard]] static bool fits(std::span<const std::span<std::byte>> pieces) noexcept;

 private:
  MPI_Datatype type_ = MPI_DATATYPE_NULL;
};

class Operation {
 public:
  explicit Operation(std::shared_ptr<void> buffers) : buffers_(std::move(buffers)) {}
  ~Operation();
  Operation(const Operation&) = delete;
  Operation& operator=(const Operation&) = delete;

  // What a request is, for when it is abandoned: a receive not yet matched is cancelled; a send
  // stays pending without holding up MPI_Finalize (the peer, alive, finalises too, and Open MPI
  // finalises with unmatched sends); any other request (a collective, a matched receive) may still
  // be moving data, and MPI_Finalize is skipped while one is left (see finalize_at_exit()).
  enum class Request { other, receive, send };
  // A new request slot for an MPI_I* call.
  [[nodiscard]] MPI_Request* add(Request kind = Request::other);
  // How wait() polls. While peers may still be missing (a signature exchange, a receive whose
  // sender has not sent) it backs off to sleeping; once every rank has arrived the data is moving,
  // and MPI only progresses a transfer inside MPI calls (Open MPI's shared-memory transport copies a
  // large message fragment by fragment as both sides poll), so it polls without sleeping.
  // peer_then_data: awaiting_peers until one request completed (the peer is there), then
  // moving_data.
  enum class Progress { awaiting_peers, moving_data, peer_then_data };
  // Polls until every request completed (true) or the deadline passed (false). Throws
  // CommunicationError when MPI reports an error.
  [[nodiscard]] bool wait(Clock::time_point deadline, Progress progress = Progress::awaiting_peers);
  [[nodiscard]] std::size_t count() const noexcept { return entries_.size(); }
  [[nodiscard]] bool pending(std::size_t i) const noexcept { return entries_[i].request != MPI_REQUEST_NULL; }
  // The status of request i once it completed (a receive's source, tag and size).
  [[nodiscard]] const MPI_Status& status(std::size_t i) const noexcept { return entries_[i].status; }

 private:
  struct Entry {
    MPI_Request request = MPI_REQUEST_NULL;
    Request kind = Request::other;
    MPI_Status status{};
  };
  std::deque<Entry> entries_;  // stable addresses for add()
  std::shared_ptr<void> buffers_;
};

// An MPI_Comm from the handle value mpi_adopt() receives (a pointer in Open MPI, an int in MPICH).
template <class Comm = MPI_Comm>
[[nodiscard]] Comm comm_from_handle(void* handle) noexcept {
  if constexpr (std::is_pointer_v<Comm>) {
    return static_cast<Comm>(handle);
  } else {
    return static_cast<Comm>(reinterpret_cast<std::intptr_t>(handle));
  }
}

}  // namespace stagekit::dist::mpi_detail
