// The raw NCCL engine that the NCCL benchmarks are divided by, measured as nccl-tests measures it: a
// communicator of the benchmark's own over MPI_COMM_WORLD (ncclGetUniqueId on rank 0, MPI_Bcast,
// ncclCommInitRank), one non-blocking stream, and three operations on device memory of the rank's
// device, each waited for (cudaStreamSynchronize) before it returns. No stagekit code sits between
// the caller and NCCL. Built with NCCL and MPI only; elsewhere make_nccl_engine() throws Unsupported.
#pragma once

#include <cstddef>
#include <memory>

namespace stagekit::perf::nccl {

class NcclEngine {
 public:
  virtual ~NcclEngine() = default;
  // ncclAllGather: `block` bytes from every rank; rank r's land at r * block of `out`.
  virtual void all_gather(const void* local, void* out, std::size_t block) = 0;
  // ncclBroadcast of `bytes` bytes from `root`, in place.
  virtual void broadcast(void* data, std::size_t bytes, int root) = 0;
  // ncclSend and ncclRecv of `bytes` bytes each way with `peer`, in one group.
  virtual void send_recv(const void* send, void* recv, std::size_t bytes, int peer) = 0;
};

// Collective over MPI_COMM_WORLD: every rank calls it with its own device (which becomes current).
// Unsupported with the reason in a build without NCCL or MPI; CommunicationError when NCCL fails.
[[nodiscard]] std::unique_ptr<NcclEngine> make_nccl_engine(int device);

}  // namespace stagekit::perf::nccl
