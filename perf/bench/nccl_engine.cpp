// make_nccl_engine() (nccl_engine.h): NCCL's own calls on a communicator of the benchmark's own.
#include "nccl_engine.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <string_view>

#include "stagekit/core/error.h"

#if STAGEKIT_DIST_BENCH_NCCL
#include <cuda_runtime_api.h>
#include <mpi.h>
#include <nccl.h>
#endif

namespace stagekit::perf::nccl {

#if STAGEKIT_DIST_BENCH_NCCL
namespace {

void check(ncclResult_t r, std::string_view call) {
  if (r != ncclSuccess) {
    throw CommunicationError(
        fmt::format("{} failed: {} (ncclResult_t {})", call, ncclGetErrorString(r), static_cast<int>(r)));
  }
}

void check(cudaError_t e, std::string_view call) {
  if (e != cudaSuccess) {
    throw CommunicationError(
        fmt::format("{} failed: {} ({}): {}", call, cudaGetErrorName(e), static_cast<int>(e), cudaGetErrorString(e)));
  }
}

class RawNccl final : public NcclEngine {
 public:
  explicit RawNccl(int device) {
    int rank = 0;
    int size = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    // Rank 0's unique id behind a status byte, so that a failure there is an error on every rank.
    std::array<char, 1 + sizeof(ncclUniqueId)> message{};
    ncclResult_t id_result = ncclSuccess;
    if (rank == 0) {
      ncclUniqueId id{};
      id_result = ncclGetUniqueId(&id);
      if (id_result == ncclSuccess) {
        message[0] = 1;
        std::memcpy(message.data() + 1, &id, sizeof id);
      }
    }
    const int rc = MPI_Bcast(message.data(), static_cast<int>(message.size()), MPI_BYTE, 0, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) throw CommunicationError(fmt::format("MPI_Bcast of the ncclUniqueId returned {}", rc));
    if (message[0] != 1) {
      check(id_result, "ncclGetUniqueId");
      throw CommunicationError("ncclGetUniqueId failed on rank 0");
    }
    ncclUniqueId id{};
    std::memcpy(&id, message.data() + 1, sizeof id);
    check(cudaSetDevice(device), "cudaSetDevice");
    check(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
    check(ncclCommInitRank(&comm_, size, id, rank), "ncclCommInitRank");
  }
  ~RawNccl() override {
    if (comm_ != nullptr) ncclCommDestroy(comm_);
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  RawNccl(const RawNccl&) = delete;
  RawNccl& operator=(const RawNccl&) = delete;

  void all_gather(const void* local, void* out, std::size_t block) override {
    check(ncclAllGather(local, out, block, ncclUint8, comm_, stream_), "ncclAllGather");
    wait("ncclAllGather");
  }
  void broadcast(void* data, std::size_t bytes, int root) override {
    check(ncclBroadcast(data, data, bytes, ncclUint8, root, comm_, stream_), "ncclBroadcast");
    wait("ncclBroadcast");
  }
  void send_recv(const void* send, void* recv, std::size_t bytes, int peer) override {
    check(ncclGroupStart(), "ncclGroupStart");
    const ncclResult_t sent = ncclSend(send, bytes, ncclUint8, peer, comm_, stream_);
    const ncclResult_t received = ncclRecv(recv, bytes, ncclUint8, peer, comm_, stream_);
    check(ncclGroupEnd(), "ncclGroupEnd");  // always closes the group, whatever the calls inside returned
    check(sent, "ncclSend");
    check(received, "ncclRecv");
    wait("ncclSend/ncclRecv");
  }

 private:
  void wait(std::string_view what) {
    check(cudaStreamSynchronize(stream_), fmt::format("cudaStreamSynchronize after {}", what));
    ncclResult_t async = ncclSuccess;
    check(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
    check(async, what);
  }

  ncclComm_t comm_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

}  // namespace

std::unique_ptr<NcclEngine> make_nccl_engine(int device) { return std::make_unique<RawNccl>(device); }

#else

std::unique_ptr<NcclEngine> make_nccl_engine(int /*device*/) {
  throw Unsupported("this build of stagekit-dist-bench has no NCCL engine (it needs NCCL and MPI)");
}

#endif

}  // namespace stagekit::perf::nccl
