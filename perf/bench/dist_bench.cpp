// The benchmarks of stagekit-dist-bench (perf/METRICS.md, "Distributed benchmarks"); S is the total
// number of bytes, N the world size:
//   limit/mpi_allgather/<S>              MPI_Allgather: S/N bytes from every rank (MPI world only)
//   limit/memcpy_gather/<S>              every rank copies N blocks of S/N bytes into one touched
//                                        buffer (the engine of a thread world, whose ranks share memory)
//   limit/memcpy_local_block/<S>         every rank copies an S/N-byte block between touched buffers
//   limit/mpi_bcast/<S>                  MPI_Bcast of S bytes from rank 0 (MPI world only)
//   limit/memcpy_bcast/<S>               every rank but rank 0 copies S bytes (thread world only)
//   dist/all_gather/<S>                  Communicator::all_gather_into with a memory owner (in place)
//   dist/all_gather_copying/<S>          Communicator::all_gather (spans only: staging copies)
//   dist/gather_state_dict/<layout>/<S>  gather_state_dict of float32 DTensors [Shard(0)] on a 1-D mesh
//   dist/distribute_tensors/<S>          distribute_tensors of one [DTensor, full tensor] pair
//   dist/broadcast/<S>                   Communicator::broadcast_many of one S-byte buffer, in place
//   dist/broadcast_state_dict/<layout>/<S>  broadcast_state_dict from rank 0 (one tensor, or many)
// and on CUDA devices with NCCL (under mpirun, one device per rank; nccl_cases.h):
//   limit/nccl_allgather/<S>             ncclAllGather of S/N bytes per rank (NCCL itself)
//   limit/nccl_bcast/<S>                 ncclBroadcast of S bytes from rank 0
//   limit/nccl_sendrecv/<S>              ncclSend + ncclRecv of S bytes each way with a partner
//   dist/nccl_all_gather/<S>             Communicator::all_gather_into on stagekit's NCCL communicator
//   dist/nccl_broadcast/<S>              its broadcast_many of one S-byte buffer
//   dist/nccl_send_recv/<S>              its send_recv with the same partner
//   dist/gather_state_dict_cuda/<layout>/<S>  gather_state_dict of CUDA DTensors (shard0, many)
// The gather_state_dict, distribute_tensors and broadcast_state_dict benchmarks measure the
// implementation under test through the adapter interface (Implementation::make_utilities(), one
// utilities object per rank); an implementation that does not declare the capabilities they need
// gets not_supported. The limits are the engines themselves, never stagekit's code: MPI_Allgather
// and MPI_Bcast under mpirun (memory copies in a thread world) for the all-gathers and broadcasts,
// memcpy for distribute_tensors, NCCL's own calls for the NCCL rows. The broadcast cases are in
// broadcast_cases.cpp, the NCCL ones in nccl_cases.cpp.
// Every benchmark runs a fixed number of iterations in lockstep on every rank (measure()), is
// verified exactly once (a wrong result is an error, never a data point) and reports algbw, busbw
// (all-gathers and broadcasts) and its ratio to its limit of the same S, measured interleaved with
// it in the same iterations (measure_interleaved()); the limit/* rows are the limits on their own.
#include <algorithm>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "../driver/dist_world.h"
#include "../driver/utilities_under_test.h"
#include "broadcast_cases.h"
#include "nccl_cases.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"

#if STAGEKIT_DIST_BENCH_MPI
#include <mpi.h>
#endif

namespace stagekit::perf {
namespace {

constexpr std::int64_t kColumns = 64;  // float32 columns of every tensor: 256-byte rows
constexpr int kManyTensors = 64;

enum class Op {
  mpi_allgather_limit,
  memcpy_gather_limit,
  memcpy_limit,
  mpi_bcast_limit,
  memcpy_bcast_limit,
  all_gather,
  all_gather_copying,
  gather,
  distribute,
  broadcast,
  broadcast_state_dict,
  nccl_allgather_limit,
  nccl_bcast_limit,
  nccl_sendrecv_limit,
  nccl_all_gather,
  nccl_broadcast,
  nccl_send_recv,
  gather_cuda
};
enum class Layout { shard0, many, uneven, one };

struct Spec {
  Op op;
  Layout layout;
  std::size_t bytes;  // S, as in the name
  std::string name;
  std::string limit;               // the limit a dist benchmark is divided by
  Op limit_op = Op::memcpy_limit;  // and the operation that measures it
};

std::vector<std::size_t> sizes() {
  switch (dist_context().mode) {
    case Mode::smoke: return {64 * kKiB};
    case Mode::quick: return {1 * kMiB, 16 * kMiB, 64 * kMiB};
    case Mode::full: return {1 * kMiB, 16 * kMiB, 256 * kMiB};
  }
  return {};
}

const char* layout_name(Layout l) {
  switch (l) {
    case Layout::shard0: return "shard0";
    case Layout::many: return "many";
    case Layout::uneven: return "uneven";
    case Layout::one: return "one";
  }
  return "?";
}

std::byte pattern(int rank, std::size_t i) { return static_cast<std::byte>((i * 131 + rank * 29 + 7) & 0xff); }

// The all-gathers: S/N pattern bytes per rank into a touched S-byte buffer, by MPI_Allgather (the
// engine), by the communicator in place (its memory owner is this case's buffers) or through its
// staging copies (spans only).
class AllGatherCase : public RankCase {
 public:
  enum class Engine { mpi, stagekit_in_place, stagekit_copying };
  AllGatherCase(const dist::Communicator& comm, std::size_t total, Engine engine)
      : engine_(engine),
        size_(comm.size()),
        block_(total / static_cast<std::size_t>(comm.size())),
        buffers_(std::make_shared<Buffers>(block_, block_ * static_cast<std::size_t>(size_))),
        sizes_(static_cast<std::size_t>(size_), block_) {
    const std::span<std::byte> local = buffers_->local();
    for (std::size_t i = 0; i < block_; ++i) local[i] = pattern(comm.rank(), i);
    const std::span<std::byte> out = buffers_->out();
    std::fill(out.begin(), out.end(), std::byte{0});  // touched
  }
  void run(dist::Communicator& comm) override {
    const std::span<std::byte> local = buffers_->local();
    const std::span<std::byte> out = buffers_->out();
    switch (engine_) {
      case Engine::mpi:
#if STAGEKIT_DIST_BENCH_MPI
      {
        const int rc = MPI_Allgather(local.data(), static_cast<int>(block_), MPI_BYTE, out.data(),
                                     static_cast<int>(block_), MPI_BYTE, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) throw CommunicationError(fmt::format("MPI_Allgather returned {}", rc));
        return;
      }
#else
        throw Unsupported("this build has no MPI");
#endif
      case Engine::stagekit_in_place: comm.all_gather_into(local, out, sizes_, buffers_); return;
      case Engine::stagekit_copying: comm.all_gather(local, out); return;
    }
  }
  std::string verify() override {
    const std::span<std::byte> out = buffers_->out();
    for (int r = 0; r < size_; ++r) {
      for (std::size_t i = 0; i < block_; ++i) {
        if (out[static_cast<std::size_t>(r) * block_ + i] != pattern(r, i)) {
          return fmt::format("byte {} of rank {}'s block differs", i, r);
        }
      }
    }
    return {};
  }

 private:
  // Host memory from stagekit's pageable allocator, as the tensors of gather_state_dict have (its
  // page size decides how fast MPI's shared-memory transport copies), so that every row moves the
  // same kind of memory.
  struct Buffers {
    Buffers(std::size_t local_bytes, std::size_t out_bytes)
        : local_storage(Storage::allocate(local_bytes)), out_storage(Storage::allocate(out_bytes)) {}
    [[nodiscard]] std::span<std::byte> local() const { return bytes(local_storage); }
    [[nodiscard]] std::span<std::byte> out() const { return bytes(out_storage); }
    static std::span<std::byte> bytes(const Storage& s) { return {static_cast<std::byte*>(s.data()), s.nbytes()}; }
    Storage local_storage;
    Storage out_storage;
  };
  Engine engine_;
  int size_;
  std::size_t block_;
  std::shared_ptr<Buffers> buffers_;  // the in-place all-gather's memory owner
  std::vector<std::size_t> sizes_;
};

// limit/memcpy_gather: the engine of a thread world. Every rank copies the N blocks of S/N bytes a
// gather brings it (from N touched source blocks of its own: the ranks share one address space)
// into one touched S-byte buffer.
class MemcpyGatherLimit : public RankCase {
 public:
  MemcpyGatherLimit(const dist::Communicator& comm, std::size_t total)
      : block_(total / static_cast<std::size_t>(comm.size())),
        out_(Storage::allocate(block_ * static_cast<std::size_t>(comm.size()))) {
    for (int r = 0; r < comm.size(); ++r) {
      sources_.push_back(Storage::allocate(block_));
      auto* bytes = static_cast<std::byte*>(sources_.back().data());
      for (std::size_t i = 0; i < block_; ++i) bytes[i] = pattern(r, i);
    }
    if (out_.nbytes() > 0) std::memset(out_.data(), 0, out_.nbytes());
  }
  void run(dist::Communicator&) override {
    auto* out = static_cast<std::byte*>(out_.data());
    for (std::size_t r = 0; r < sources_.size(); ++r) std::memcpy(out + r * block_, sources_[r].data(), block_);
  }
  std::string verify() override {
    const auto* out = static_cast<const std::byte*>(out_.data());
    for (std::size_t r = 0; r < sources_.size(); ++r) {
      if (std::memcmp(out + r * block_, sources_[r].data(), block_) != 0)
        return fmt::format("rank {}'s block differs", r);
    }
    return {};
  }

 private:
  std::size_t block_;
  std::vector<Storage> sources_;
  Storage out_;
};

// limit/memcpy_local_block: what distribute_tensors has to do on each rank, by memcpy.
class MemcpyLimit : public RankCase {
 public:
  MemcpyLimit(const dist::Communicator& comm, std::size_t total)
      : src_(total / static_cast<std::size_t>(comm.size())), dst_(src_.size()) {
    for (std::size_t i = 0; i < src_.size(); ++i) src_[i] = pattern(comm.rank(), i);
  }
  void run(dist::Communicator&) override { std::memcpy(dst_.data(), src_.data(), src_.size()); }
  std::string verify() override { return dst_ == src_ ? std::string() : "the copied block differs"; }

 private:
  std::vector<std::byte> src_;
  std::vector<std::byte> dst_;
};

// The full tensors of a layout, S bytes in all: shard0 one [S/256, 64] tensor; many 64 tensors of
// S/64 bytes; uneven two tensors of S/512 + 1 and S/512 - 1 rows (blocks of unequal size on most N).
struct Fixture {
  std::vector<std::string> names;
  std::vector<Tensor> full;
};

std::shared_ptr<const Fixture> make_fixture(Layout layout, std::size_t bytes) {
  const auto rows = static_cast<std::int64_t>(bytes / (kColumns * 4));
  std::vector<std::pair<std::string, std::int64_t>> tensors;
  switch (layout) {
    case Layout::shard0: tensors = {{"weight", rows}}; break;
    case Layout::many:
      for (int i = 0; i < kManyTensors; ++i)
        tensors.emplace_back(fmt::format("layers.{}.weight", i), rows / kManyTensors);
      break;
    case Layout::uneven: tensors = {{"a.weight", rows / 2 + 1}, {"b.weight", rows / 2 - 1}}; break;
    case Layout::one: tensors = {{"weight", rows}}; break;
  }
  auto f = std::make_shared<Fixture>();
  std::uint64_t seed = 1000;
  for (auto& [name, r] : tensors) {
    f->names.push_back(name);
    f->full.push_back(Tensor::random({r, kColumns}, DType::float32, seed++));
  }
  return f;
}

// Built by the first rank that asks (inside measure(), so that a failure is agreed on like any
// setup error) and shared by the ranks of a thread world.
class LazyFixture {
 public:
  LazyFixture(Layout layout, std::size_t bytes) : layout_(layout), bytes_(bytes) {}
  std::shared_ptr<const Fixture> get() {
    std::call_once(once_, [this] { value_ = make_fixture(layout_, bytes_); });
    return value_;
  }

 private:
  Layout layout_;
  std::size_t bytes_;
  std::once_flag once_;
  std::shared_ptr<const Fixture> value_;
};

std::shared_ptr<DTensor> distribute(const Tensor& full, const dist::Communicator& comm) {
  return DTensor::distribute(full, DeviceMesh::one_d(DeviceType::cpu, comm.size()), {Placement::shard(0)}, comm.rank());
}

// dist/gather_state_dict: every rank holds its DTensor blocks; the gathered dict must hold the full tensors.
class GatherCase : public RankCase {
 public:
  GatherCase(const dist::Communicator& comm, std::shared_ptr<const Fixture> f)
      : f_(std::move(f)), utilities_(rank_utilities(/*needs_dtensor=*/true)) {
    auto dict = std::make_shared<Dict>();
    for (std::size_t i = 0; i < f_->full.size(); ++i)
      dict->set(DictKey(f_->names[i]), Value(distribute(f_->full[i], comm)));
    state_dict_ = Value(dict);
  }
  void prepare() override { gathered_ = Value(); }  // freeing the previous result is not timed
  void run(dist::Communicator& comm) override { gathered_ = utilities_->gather_state_dict(state_dict_, comm, {}); }
  std::string verify() override { return differs_from_full(gathered_, f_->names, f_->full, "gathered dict"); }

 private:
  std::shared_ptr<const Fixture> f_;
  std::unique_ptr<conformance::StateDictUtilitiesUnderTest> utilities_;
  Value state_dict_;
  Value gathered_;
};

// dist/distribute_tensors: every rank copies its block of the full tensor into its (zeroed) DTensor.
class DistributeCase : public RankCase {
 public:
  DistributeCase(const dist::Communicator& comm, std::shared_ptr<const Fixture> f)
      : f_(std::move(f)), utilities_(rank_utilities(/*needs_dtensor=*/true)), dt_(distribute(f_->full.front(), comm)) {
    Tensor local = dt_->local();
    if (local.numel() > 0) local.fill_(0);
  }
  void prepare() override {
    state_dict_ = Value::dict({{DictKey(f_->names.front()), Value::list({Value(dt_), Value(f_->full.front())})}});
  }
  void run(dist::Communicator&) override { utilities_->distribute_tensors(state_dict_, f_->names); }
  std::string verify() override {
    const Value& v = state_dict_.as_dict().at(DictKey(f_->names.front()));
    if (v.kind() != Value::Kind::dtensor || v.as_dtensor_node() != dt_) return "the key does not hold the DTensor";
    const LocalShard block = dt_->local_shard();
    const Tensor& full = f_->full.front();
    const Tensor expected = full.narrow(0, std::min(block.offset[0], full.sizes()[0]), block.shape[0]);
    return Tensor::equal(dt_->local(), expected) ? std::string() : "the local tensor differs from its block";
  }

 private:
  std::shared_ptr<const Fixture> f_;
  std::unique_ptr<conformance::StateDictUtilitiesUnderTest> utilities_;
  std::shared_ptr<DTensor> dt_;
  Value state_dict_;
};

CaseFactory nccl_factory(nccl::Op op, std::size_t bytes) {
  return [op, bytes](dist::Communicator& c) { return nccl::make_case(op, c, bytes); };
}

CaseFactory factory(const Spec& spec) {
  using Engine = AllGatherCase::Engine;
  switch (spec.op) {
    case Op::all_gather:
      return [bytes = spec.bytes](dist::Communicator& c) {
        return std::make_unique<AllGatherCase>(c, bytes, Engine::stagekit_in_place);
      };
    case Op::all_gather_copying:
      return [bytes = spec.bytes](dist::Communicator& c) {
        return std::make_unique<AllGatherCase>(c, bytes, Engine::stagekit_copying);
      };
    case Op::mpi_allgather_limit:
      return [bytes = spec.bytes](dist::Communicator& c) {
        require_world(c, "mpi", "limit/mpi_allgather", "limit/memcpy_gather");
        return std::make_unique<AllGatherCase>(c, bytes, Engine::mpi);
      };
    case Op::memcpy_gather_limit:
      return [bytes = spec.bytes](dist::Communicator& c) {
        require_world(c, "thread", "limit/memcpy_gather", "limit/mpi_allgather");
        return std::make_unique<MemcpyGatherLimit>(c, bytes);
      };
    case Op::memcpy_limit:
      return [bytes = spec.bytes](dist::Communicator& c) { return std::make_unique<MemcpyLimit>(c, bytes); };
    case Op::mpi_bcast_limit:
      return [bytes = spec.bytes](dist::Communicator& c) { return broadcast::make_mpi_bcast_limit(c, bytes); };
    case Op::memcpy_bcast_limit:
      return [bytes = spec.bytes](dist::Communicator& c) { return broadcast::make_memcpy_bcast_limit(c, bytes); };
    case Op::broadcast:
      return [bytes = spec.bytes](dist::Communicator& c) { return broadcast::make_broadcast(c, bytes); };
    case Op::broadcast_state_dict:
      return broadcast::broadcast_state_dict_factory(spec.layout == Layout::many, spec.bytes);
    case Op::nccl_allgather_limit: return nccl_factory(nccl::Op::engine_all_gather, spec.bytes);
    case Op::nccl_bcast_limit: return nccl_factory(nccl::Op::engine_broadcast, spec.bytes);
    case Op::nccl_sendrecv_limit: return nccl_factory(nccl::Op::engine_send_recv, spec.bytes);
    case Op::nccl_all_gather: return nccl_factory(nccl::Op::all_gather, spec.bytes);
    case Op::nccl_broadcast: return nccl_factory(nccl::Op::broadcast, spec.bytes);
    case Op::nccl_send_recv: return nccl_factory(nccl::Op::send_recv, spec.bytes);
    case Op::gather_cuda: return nccl::gather_state_dict_factory(spec.layout == Layout::many, spec.bytes);
    case Op::gather:
    case Op::distribute: break;
  }
  auto lazy = std::make_shared<LazyFixture>(spec.layout, spec.bytes);
  if (spec.op == Op::gather)
    return [lazy](dist::Communicator& c) { return std::make_unique<GatherCase>(c, lazy->get()); };
  return [lazy](dist::Communicator& c) { return std::make_unique<DistributeCase>(c, lazy->get()); };
}

bool is_limit(Op op) {
  return op == Op::mpi_allgather_limit || op == Op::memcpy_gather_limit || op == Op::memcpy_limit ||
         op == Op::mpi_bcast_limit || op == Op::memcpy_bcast_limit || op == Op::nccl_allgather_limit ||
         op == Op::nccl_bcast_limit || op == Op::nccl_sendrecv_limit;
}

bool is_broadcast(Op op) {
  return op == Op::mpi_bcast_limit || op == Op::memcpy_bcast_limit || op == Op::broadcast ||
         op == Op::broadcast_state_dict || op == Op::nccl_bcast_limit || op == Op::nccl_broadcast;
}

bool is_send_recv(Op op) { return op == Op::nccl_sendrecv_limit || op == Op::nccl_send_recv; }

// The bytes one iteration of `spec` moves: whole S/N blocks for the all-gathers and their limits
// (and memcpy_local_block), exactly S for the state-dict layouts, the broadcasts and the exchanges
// (S each way).
std::size_t moved_bytes(const Spec& spec) {
  const auto n = static_cast<std::size_t>(dist_context().world_size);
  const bool whole_blocks = !is_broadcast(spec.op) && !is_send_recv(spec.op) &&
                            (is_limit(spec.op) || spec.op == Op::all_gather || spec.op == Op::all_gather_copying ||
                             spec.op == Op::nccl_all_gather);
  return whole_blocks ? spec.bytes / n * n : spec.bytes;
}

double algbw_of(const Spec& spec, const std::vector<double>& seconds) {
  double total = 0;
  for (const double s : seconds) total += s;
  return total > 0 ? static_cast<double>(moved_bytes(spec)) * static_cast<double>(seconds.size()) / total : 0;
}

// A benchmark runs interleaved with its limit (measure_interleaved: the two alternate inside every
// iteration), and its ratio_to_limit divides by the limit measured in those same iterations, so that
// the drift of this noisy machine between two separate benchmarks does not enter the ratio. A limit
// on its own row is measured alone.
void run_benchmark(benchmark::State& state, const Spec& spec) {
  const int n = dist_context().world_size;
  const int iterations = fixed_iterations(spec.bytes);
  std::vector<CaseFactory> makes{factory(spec)};
  if (!is_limit(spec.op)) makes.push_back(factory(Spec{spec.limit_op, spec.layout, spec.bytes, spec.limit, ""}));
  const std::vector<Measurement> all = measure_interleaved(makes, iterations);
  const std::optional<double> total = report_iterations(state, all.front());
  if (!total) return;
  const std::size_t bytes = moved_bytes(spec);
  const double algbw = algbw_of(spec, all.front().seconds);
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes * state.iterations()));
  state.counters["bytes"] = static_cast<double>(bytes);
  state.counters["algbw"] = algbw;
  state.counters["world_size"] = n;
  state.counters["wrong"] = 0;
  // busbw as nccl-tests defines it: algbw * (N-1)/N for an all-gather, algbw for a broadcast; none
  // for the memory-copy limits and distribute_tensors, which move nothing between ranks.
  // An exchange has none either: it is measured as algbw only (as replication's rows are).
  if (is_broadcast(spec.op) && spec.op != Op::memcpy_bcast_limit) {
    state.counters["busbw"] = algbw;
  } else if (spec.op != Op::memcpy_limit && spec.op != Op::memcpy_gather_limit && spec.op != Op::distribute &&
             spec.op != Op::memcpy_bcast_limit && !is_send_recv(spec.op)) {
    state.counters["busbw"] = algbw * (n - 1) / n;
  }
  if (is_limit(spec.op)) return;
  const Measurement& limit = all.back();
  const double limit_algbw =
      limit.error.empty() ? algbw_of(Spec{spec.limit_op, spec.layout, spec.bytes, "", ""}, limit.seconds) : 0;
  if (limit_algbw > 0) {
    state.counters["limit_algbw"] = limit_algbw;
    state.counters["ratio_to_limit"] = algbw / limit_algbw;
    state.SetLabel("limit=" + spec.limit);
  } else {
    state.SetLabel(fmt::format("limit={} (not measured in this run: {})", spec.limit,
                               limit.error.empty() ? "it took no time" : limit.error));
  }
}

}  // namespace

void register_dist_benchmarks() {
  // The engine an all-gather is divided by: MPI itself under mpirun, memory copies in a thread world.
  const bool mpi = dist_context().backend == "mpi";
  const Op gather_limit = mpi ? Op::mpi_allgather_limit : Op::memcpy_gather_limit;
  const Op broadcast_limit = mpi ? Op::mpi_bcast_limit : Op::memcpy_bcast_limit;
  const auto gather_engine = [mpi](std::size_t s) {
    return mpi ? fmt::format("limit/mpi_allgather/{}", s) : fmt::format("limit/memcpy_gather/{}", s);
  };
  const auto broadcast_engine = [mpi](std::size_t s) {
    return mpi ? fmt::format("limit/mpi_bcast/{}", s) : fmt::format("limit/memcpy_bcast/{}", s);
  };
  std::vector<Spec> specs;
  for (const std::size_t s : sizes()) {
    specs.push_back({Op::mpi_allgather_limit, Layout::shard0, s, fmt::format("limit/mpi_allgather/{}", s), ""});
    specs.push_back({Op::memcpy_gather_limit, Layout::shard0, s, fmt::format("limit/memcpy_gather/{}", s), ""});
    specs.push_back({Op::memcpy_limit, Layout::shard0, s, fmt::format("limit/memcpy_local_block/{}", s), ""});
    specs.push_back({Op::mpi_bcast_limit, Layout::one, s, fmt::format("limit/mpi_bcast/{}", s), ""});
    specs.push_back({Op::memcpy_bcast_limit, Layout::one, s, fmt::format("limit/memcpy_bcast/{}", s), ""});
  }
  for (const std::size_t s : sizes()) {
    specs.push_back(
        {Op::all_gather, Layout::shard0, s, fmt::format("dist/all_gather/{}", s), gather_engine(s), gather_limit});
    specs.push_back({Op::all_gather_copying, Layout::shard0, s, fmt::format("dist/all_gather_copying/{}", s),
                     gather_engine(s), gather_limit});
    for (const Layout layout : {Layout::shard0, Layout::many, Layout::uneven}) {
      specs.push_back({Op::gather, layout, s, fmt::format("dist/gather_state_dict/{}/{}", layout_name(layout), s),
                       gather_engine(s), gather_limit});
    }
    specs.push_back({Op::distribute, Layout::shard0, s, fmt::format("dist/distribute_tensors/{}", s),
                     fmt::format("limit/memcpy_local_block/{}", s), Op::memcpy_limit});
    specs.push_back(
        {Op::broadcast, Layout::one, s, fmt::format("dist/broadcast/{}", s), broadcast_engine(s), broadcast_limit});
    for (const Layout layout : {Layout::one, Layout::many}) {
      specs.push_back({Op::broadcast_state_dict, layout, s,
                       fmt::format("dist/broadcast_state_dict/{}/{}", layout_name(layout), s), broadcast_engine(s),
                       broadcast_limit});
    }
  }
  // The NCCL rows: NCCL itself, and stagekit on it (nccl_cases.h); not_supported without a CUDA
  // device per rank under mpirun.
  for (const std::size_t s : sizes()) {
    specs.push_back({Op::nccl_allgather_limit, Layout::shard0, s, fmt::format("limit/nccl_allgather/{}", s), ""});
    specs.push_back({Op::nccl_bcast_limit, Layout::one, s, fmt::format("limit/nccl_bcast/{}", s), ""});
    specs.push_back({Op::nccl_sendrecv_limit, Layout::one, s, fmt::format("limit/nccl_sendrecv/{}", s), ""});
  }
  for (const std::size_t s : sizes()) {
    const std::string all_gather = fmt::format("limit/nccl_allgather/{}", s);
    specs.push_back({Op::nccl_all_gather, Layout::shard0, s, fmt::format("dist/nccl_all_gather/{}", s), all_gather,
                     Op::nccl_allgather_limit});
    specs.push_back({Op::nccl_broadcast, Layout::one, s, fmt::format("dist/nccl_broadcast/{}", s),
                     fmt::format("limit/nccl_bcast/{}", s), Op::nccl_bcast_limit});
    specs.push_back({Op::nccl_send_recv, Layout::one, s, fmt::format("dist/nccl_send_recv/{}", s),
                     fmt::format("limit/nccl_sendrecv/{}", s), Op::nccl_sendrecv_limit});
    for (const Layout layout : {Layout::shard0, Layout::many}) {
      specs.push_back({Op::gather_cuda, layout, s,
                       fmt::format("dist/gather_state_dict_cuda/{}/{}", layout_name(layout), s), all_gather,
                       Op::nccl_allgather_limit});
    }
  }
  for (const Spec& spec : specs) {
    benchmark::RegisterBenchmark(spec.name.c_str(), [spec](benchmark::State& state) { run_benchmark(state, spec); })
        ->Iterations(fixed_iterations(spec.bytes))
        ->UseManualTime()
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace stagekit::perf
