// The NCCL benchmarks' per-rank work (nccl_cases.h): the raw engine, stagekit's NCCL communicator,
// and gather_state_dict of CUDA DTensors through the adapter.
#include "nccl_cases.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "../driver/utilities_under_test.h"
#include "nccl_engine.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"

namespace stagekit::perf::nccl {
namespace {

constexpr int kRoot = 0;
constexpr std::int64_t kColumns = 64;  // float32 columns of every tensor: 256-byte rows
constexpr int kManyTensors = 64;

std::byte pattern(int rank, std::size_t i) { return static_cast<std::byte>((i * 131 + rank * 29 + 7) & 0xff); }

// This process's rank on its node, as the MPI launcher says (rank r of a node uses device r).
int local_rank(const dist::Communicator& comm) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return comm.rank();
}

struct World {
  int device = 0;
  std::unique_ptr<dist::Communicator> stagekit;  // stagekit's NCCL communicator
  std::unique_ptr<NcclEngine> engine;            // NCCL itself
};

std::unique_ptr<World> g_world;
std::optional<std::string> g_failure;  // why the world could not be made (every later call says it again)
bool g_failure_unsupported = false;

// Every rank learns whether every rank has a CUDA device of its own, so that all skip alike.
int device_of_this_rank(dist::Communicator& comm) {
  const cuda::Availability& a = cuda::availability();
  const int local = local_rank(comm);
  std::int32_t lacking = a.available && local < a.device_count ? 0 : 1;
  comm.all_reduce(std::as_writable_bytes(std::span(&lacking, 1)), DType::int32, dist::ReduceOp::sum);
  if (!a.available) throw Unsupported(a.reason);  // the reason every CUDA row gives
  if (lacking != 0) {
    throw Unsupported(
        fmt::format("the NCCL benchmarks need one CUDA device per rank: {} of {} rank(s) have none "
                    "({} device(s) on this node)",
                    lacking, comm.size(), a.device_count));
  }
  return local;
}

// Under MPI only (one rank per process, so one thread reaches the globals): a thread world is
// refused before them.
World& world(dist::Communicator& comm) {
  if (comm.backend() != "mpi") {
    throw Unsupported(fmt::format("the NCCL benchmarks run under mpirun, one rank per CUDA device (this is a {} world)",
                                  comm.backend()));
  }
  if (g_world) return *g_world;
  if (g_failure) {
    if (g_failure_unsupported) throw Unsupported(*g_failure);
    throw CommunicationError(*g_failure);
  }
  try {
    auto w = std::make_unique<World>();
    w->device = device_of_this_rank(comm);
    cuda::set_device(w->device);
    w->stagekit = dist::nccl_communicator(comm);
    w->stagekit->set_timeout(std::chrono::seconds(120));
    w->engine = make_nccl_engine(w->device);
    g_world = std::move(w);
    return *g_world;
  } catch (const Unsupported& e) {
    g_failure = e.what();
    g_failure_unsupported = true;
    throw;
  } catch (const std::exception& e) {
    g_failure = fmt::format("the NCCL world could not be made: {}", e.what());
    throw CommunicationError(*g_failure);
  }
}

std::span<std::byte> bytes_of(const Storage& s) { return {static_cast<std::byte*>(s.data()), s.nbytes()}; }

// Host bytes into device memory, finished before the first iteration (the engine's stream does not
// wait for the legacy default stream).
void upload(const Storage& device, const std::vector<std::byte>& host) {
  cuda::memcpy_sync(device.data(), host.data(), host.size());
  cuda::device_synchronize();
}

std::vector<std::byte> download(const Storage& device) {
  std::vector<std::byte> host(device.nbytes());
  cuda::memcpy_sync(host.data(), device.data(), host.size());
  return host;
}

// `n` bytes of rank `rank`'s pattern.
std::vector<std::byte> patterned(int rank, std::size_t n) {
  std::vector<std::byte> host(n);
  for (std::size_t i = 0; i < n; ++i) host[i] = pattern(rank, i);
  return host;
}

// Empty when the device buffer holds rank `rank`'s pattern, else the first byte that differs.
std::string differs_from_pattern(const Storage& device, int rank) {
  const std::vector<std::byte> out = download(device);
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] != pattern(rank, i)) return fmt::format("byte {} differs from rank {}'s", i, rank);
  }
  return {};
}

// The device memory of one case, kept alive by the in-place calls of stagekit's communicator.
struct Buffers {
  Storage send;
  Storage receive;
};

// An all-gather: S/N pattern bytes of every rank into an S-byte buffer.
class AllGatherCase : public RankCase {
 public:
  AllGatherCase(World& w, const dist::Communicator& comm, std::size_t total, bool engine)
      : world_(w), engine_(engine), size_(comm.size()), block_(total / static_cast<std::size_t>(comm.size())) {
    const Device device = Device::cuda(w.device);
    buffers_ = std::make_shared<Buffers>(Buffers{Storage::allocate(block_, device),
                                                 Storage::allocate(block_ * static_cast<std::size_t>(size_), device)});
    upload(buffers_->send, patterned(comm.rank(), block_));
    upload(buffers_->receive, std::vector<std::byte>(buffers_->receive.nbytes()));
  }
  void run(dist::Communicator&) override {
    if (engine_) {
      world_.engine->all_gather(buffers_->send.data(), buffers_->receive.data(), block_);
    } else {
      const std::vector<std::size_t> sizes(static_cast<std::size_t>(size_), block_);
      world_.stagekit->all_gather_into(bytes_of(buffers_->send), bytes_of(buffers_->receive), sizes, buffers_);
    }
  }
  std::string verify() override {
    const std::vector<std::byte> out = download(buffers_->receive);
    for (int r = 0; r < size_; ++r) {
      for (std::size_t i = 0; i < block_; ++i) {
        if (out[static_cast<std::size_t>(r) * block_ + i] != pattern(r, i))
          return fmt::format("byte {} of rank {}'s block differs", i, r);
      }
    }
    return {};
  }

 private:
  World& world_;
  bool engine_;
  int size_;
  std::size_t block_;
  std::shared_ptr<Buffers> buffers_;
};

// A broadcast of S pattern bytes from rank 0 into touched zeros elsewhere.
class BroadcastCase : public RankCase {
 public:
  BroadcastCase(World& w, const dist::Communicator& comm, std::size_t bytes, bool engine) : world_(w), engine_(engine) {
    buffers_ = std::make_shared<Buffers>(Buffers{Storage(), Storage::allocate(bytes, Device::cuda(w.device))});
    upload(buffers_->receive, comm.rank() == kRoot ? patterned(kRoot, bytes) : std::vector<std::byte>(bytes));
  }
  void run(dist::Communicator&) override {
    if (engine_) {
      world_.engine->broadcast(buffers_->receive.data(), buffers_->receive.nbytes(), kRoot);
    } else {
      const std::span<std::byte> items[] = {bytes_of(buffers_->receive)};
      world_.stagekit->broadcast_many(items, kRoot, buffers_);
    }
  }
  std::string verify() override { return differs_from_pattern(buffers_->receive, kRoot); }

 private:
  World& world_;
  bool engine_;
  std::shared_ptr<Buffers> buffers_;
};

// S bytes each way between partners (r + N/2) % N, as replication exchanges.
class SendRecvCase : public RankCase {
 public:
  SendRecvCase(World& w, const dist::Communicator& comm, std::size_t bytes, bool engine)
      : world_(w), engine_(engine), peer_((comm.rank() + comm.size() / 2) % comm.size()) {
    if (comm.size() % 2 != 0) {
      throw Unsupported(fmt::format("a pairwise exchange needs an even number of ranks, not {}", comm.size()));
    }
    const Device device = Device::cuda(w.device);
    buffers_ = std::make_shared<Buffers>(Buffers{Storage::allocate(bytes, device), Storage::allocate(bytes, device)});
    upload(buffers_->send, patterned(comm.rank(), bytes));
    upload(buffers_->receive, std::vector<std::byte>(bytes));
  }
  void run(dist::Communicator&) override {
    if (engine_) {
      world_.engine->send_recv(buffers_->send.data(), buffers_->receive.data(), buffers_->send.nbytes(), peer_);
    } else {
      const std::span<const std::byte> sends[] = {bytes_of(buffers_->send)};
      const std::span<std::byte> recvs[] = {bytes_of(buffers_->receive)};
      world_.stagekit->send_recv(peer_, sends, recvs, /*tag=*/7, buffers_);
    }
  }
  std::string verify() override { return differs_from_pattern(buffers_->receive, peer_); }

 private:
  World& world_;
  bool engine_;
  int peer_;
  std::shared_ptr<Buffers> buffers_;
};

// gather_state_dict of CUDA DTensors: the full tensors are made on the host from seeds (the same on
// every rank), each rank keeps its block in CUDA memory, and the gathered dict must hold them all.
class GatherCase : public RankCase {
 public:
  GatherCase(World& w, const dist::Communicator& comm, bool many, std::size_t bytes)
      : utilities_(rank_utilities(/*needs_dtensor=*/true)) {
    const auto rows = static_cast<std::int64_t>(bytes / (kColumns * 4));
    const int count = many ? kManyTensors : 1;
    const Device device = Device::cuda(w.device);
    const DeviceMesh mesh = DeviceMesh::one_d(DeviceType::cuda, comm.size());
    auto dict = std::make_shared<Dict>();
    for (int i = 0; i < count; ++i) {
      names_.push_back(many ? fmt::format("layers.{}.weight", i) : std::string("weight"));
      full_.push_back(Tensor::random({rows / count, kColumns}, DType::float32, 2000 + static_cast<std::uint64_t>(i)));
      dict->set(DictKey(names_.back()),
                Value(DTensor::distribute(full_.back().to(device), mesh, {Placement::shard(0)}, comm.rank())));
    }
    state_dict_ = Value(dict);
    cuda::device_synchronize();
  }
  void prepare() override { gathered_ = Value(); }  // freeing the previous result is not timed
  void run(dist::Communicator& comm) override {
    gathered_ = utilities_->gather_state_dict(state_dict_, comm, {});
    cuda::device_synchronize();  // the full tensors are in place before the clock stops
  }
  std::string verify() override { return differs_from_full(gathered_, names_, full_, "gathered dict"); }

 private:
  std::unique_ptr<conformance::StateDictUtilitiesUnderTest> utilities_;
  std::vector<std::string> names_;
  std::vector<Tensor> full_;
  Value state_dict_;
  Value gathered_;
};

}  // namespace

std::unique_ptr<RankCase> make_case(Op op, dist::Communicator& comm, std::size_t bytes) {
  World& w = world(comm);
  switch (op) {
    case Op::engine_all_gather: return std::make_unique<AllGatherCase>(w, comm, bytes, true);
    case Op::all_gather: return std::make_unique<AllGatherCase>(w, comm, bytes, false);
    case Op::engine_broadcast: return std::make_unique<BroadcastCase>(w, comm, bytes, true);
    case Op::broadcast: return std::make_unique<BroadcastCase>(w, comm, bytes, false);
    case Op::engine_send_recv: return std::make_unique<SendRecvCase>(w, comm, bytes, true);
    case Op::send_recv: return std::make_unique<SendRecvCase>(w, comm, bytes, false);
  }
  throw InternalError("unknown NCCL benchmark operation");
}

CaseFactory gather_state_dict_factory(bool many, std::size_t bytes) {
  return
      [many, bytes](dist::Communicator& comm) { return std::make_unique<GatherCase>(world(comm), comm, many, bytes); };
}

void release_world() {
  if (g_world) cuda::set_device(g_world->device);
  g_world.reset();
}

}  // namespace stagekit::perf::nccl
