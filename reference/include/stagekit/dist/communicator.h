// stagekit/dist/communicator.h — Communicator: the collectives the distributed state-dict utilities
// and the replication stager need, over three backends.
//
//   * thread world (run_thread_world): N ranks as threads of one process, for fast tests and
//     debugging;
//   * MPI (Open MPI): the real multi-process, multi-node engine, launched with mpirun or srun;
//     adopts an existing MPI_Comm or owns MPI_Init/MPI_Finalize;
//   * NCCL: CUDA buffers, bootstrapped over an MPI communicator (unique id broadcast).
//
// Invariants every backend keeps:
//   * every blocking operation gives up after timeout() and throws stagekit::TimeoutError naming the
//     operation, the peer(s) and the time waited — a rank that died or never arrives is an error on
//     the others, never a hang. After a timeout the communicator is broken: every later operation
//     throws CommunicationError at once;
//   * collectives are called by every rank of the communicator in the same order; sizes that must
//     agree (broadcast, all_gather, all_reduce) are checked where the backend can, and a mismatch
//     is a CommunicationError, not corrupted memory;
//   * byte buffers are host memory, except on NCCL where the spans passed in are device memory of
//     current_device() (recv_any_size and all_gather_v return host copies);
//   * sub-communicators inherit their parent's timeout; one Communicator is not to be used from two
//     threads at once; a boolean sum is a logical or (as in PyTorch);
//   * send() returns once the buffer may be reused; messages between two ranks with the same tag
//     arrive in order;
//   * split() is collective and returns the sub-communicator of this rank's colour (ranks ordered by
//     key, then by parent rank), or nullptr for colour kUndefinedColor.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "stagekit/core/dtype.h"
#include "stagekit/core/tensor.h"

namespace stagekit::dist {

enum class ReduceOp { sum };

inline constexpr int kUndefinedColor = -1;
inline constexpr std::chrono::milliseconds kDefaultTimeout = std::chrono::minutes(5);

class Communicator {
 public:
  virtual ~Communicator() = default;

  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;
  [[nodiscard]] virtual std::string backend() const = 0;  // "thread", "mpi", "nccl"
  [[nodiscard]] std::chrono::milliseconds timeout() const noexcept { return timeout_; }
  void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }

  // What keeps the memory behind a collective's spans alive (any owner: the Storages of tensors, a
  // shared buffer). Given one, a backend may move the bytes in place, without staging copies: a
  // transfer abandoned at a timeout keeps the owner (so the memory) until MPI is done with it, so
  // the memory is never written after it was freed. Without one (nullptr) the backend copies
  // through buffers of its own, and nothing touches the caller's memory after the call returned.
  using MemoryOwner = std::shared_ptr<const void>;

  // Point to point.
  virtual void send(std::span<const std::byte> data, int dst, int tag) = 0;
  virtual void recv(std::span<std::byte> data, int src, int tag) = 0;  // exactly data.size() bytes
  // Receives a message of any size (the sender used send()).
  [[nodiscard]] virtual std::vector<std::byte> recv_any_size(int src, int tag) = 0;

  // Both directions with one peer at once (both ranks call it, each naming the other): every span
  // of `sends` goes to `peer` as one message on `tag`, every span of `recvs` receives one message
  // from it, and all of them are in flight together. The peer's i-th message must be exactly
  // recvs[i].size() bytes (a message of another size is a CommunicationError, and the communicator
  // is broken afterwards). `owner` keeps the memory of both lists alive, as for all_gather_into: in
  // place with one, through staging copies without one. A timeout names the peer and how many
  // messages did not arrive. The default is send() and recv() one after the other, the lower rank
  // sending first.
  virtual void send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                         std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner owner);

  // Collectives.
  virtual void broadcast(std::span<std::byte> data, int root) = 0;
  // Several broadcasts from one root at once, coalesced: the ranks agree on the root and every size
  // once (a size that differs is a CommunicationError on every rank before any payload moves), then
  // every item is in flight together. `owner` as for all_gather_into (in place with one). The
  // default broadcasts them one after the other.
  virtual void broadcast_many(std::span<const std::span<std::byte>> items, int root, MemoryOwner owner);
  // Equal sizes: out.size() == size() * local.size(); rank r's bytes land at r * local.size().
  virtual void all_gather(std::span<const std::byte> local, std::span<std::byte> out) = 0;
  // Variable sizes: one buffer per rank, in rank order.
  [[nodiscard]] virtual std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) = 0;

  // Variable sizes into one buffer: rank r's bytes land at offset sizes[0] + ... + sizes[r - 1] of
  // `out`, and out.size() is the sum. Every rank passes the same `sizes`, with local.size() ==
  // sizes[rank()]: a rank whose contribution differs from what the others expect is a
  // CommunicationError on every rank before any payload moves. Memory as the backend's byte API
  // takes it (device memory on NCCL, where unequal sizes are Unsupported).
  virtual void all_gather_into(std::span<const std::byte> local, std::span<std::byte> out,
                               std::span<const std::size_t> sizes, MemoryOwner owner);
  // One all_gather_into of many: this rank's block, where every rank's blocks land, their sizes.
  struct GatherInto {
    std::span<const std::byte> local;
    std::span<std::byte> out;
    std::vector<std::size_t> sizes;
  };
  // Several all_gather_into at once, coalesced: the ranks agree on every size once, then every
  // transfer is in flight together (as NCCL's group calls and PyTorch's coalescing managers do).
  // `owner` keeps the memory of every item alive, as for all_gather_into. The default runs them
  // one after the other.
  virtual void all_gather_into_many(std::span<const GatherInto> items, MemoryOwner owner);
  // In place; data.size() must be a multiple of dtype's element size.
  virtual void all_reduce(std::span<std::byte> data, DType dtype, ReduceOp op) = 0;
  virtual void barrier() = 0;
  [[nodiscard]] virtual std::unique_ptr<Communicator> split(int color, int key) = 0;

  // ---- tensor helpers (contiguous tensors on this backend's memory; others throw InvalidArgument) --
  void send_tensor(const Tensor& t, int dst, int tag);
  void recv_tensor(const Tensor& t, int src, int tag);  // into t, whose sizes and dtype must match
  void broadcast_tensor(const Tensor& t, int root);
  // Concatenation along dim 0 of every rank's `local` (equal shapes): a new tensor.
  [[nodiscard]] Tensor all_gather_tensor(const Tensor& local);
  void all_reduce_tensor(const Tensor& t, ReduceOp op = ReduceOp::sum);

 protected:
  std::chrono::milliseconds timeout_ = kDefaultTimeout;
};

// ---- thread world ---------------------------------------------------------------------------------

// Runs `body(comm)` on `world_size` threads, one Communicator each (backend "thread"), and waits for
// all of them. The first exception thrown by any rank is rethrown here after every thread ended (a
// rank that throws stops participating; the others then time out instead of hanging).
void run_thread_world(int world_size, const std::function<void(Communicator&)>& body,
                      std::chrono::milliseconds timeout = kDefaultTimeout);

// ---- MPI ---------------------------------------------------------------------------------------------

// True when stagekit was built with MPI (STAGEKIT_HAVE_MPI).
[[nodiscard]] bool mpi_compiled() noexcept;
// The MPI world. Initialises MPI (thread level MPI_THREAD_MULTIPLE requested) if nobody did and then
// finalises it at exit; Unsupported when built without MPI.
[[nodiscard]] std::unique_ptr<Communicator> mpi_world();
// Adopts an existing communicator (an MPI_Comm passed as its handle value; collective: it is
// duplicated); never finalises MPI.
[[nodiscard]] std::unique_ptr<Communicator> mpi_adopt(void* mpi_comm_handle);
// True when this process was started by an MPI launcher (mpirun/srun environment variables).
[[nodiscard]] bool launched_by_mpi() noexcept;

// ---- NCCL ---------------------------------------------------------------------------------------------

// NCCL over the ranks of `bootstrap` (an MPI communicator), one GPU per rank (current_device()).
// Unsupported with a reason when built without NCCL or when no CUDA device is usable.
[[nodiscard]] std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap);

}  // namespace stagekit::dist
