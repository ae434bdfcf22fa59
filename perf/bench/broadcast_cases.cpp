// The broadcast benchmarks' per-rank work (broadcast_cases.h): the engine (MPI_Bcast, or memcpy in
// a thread world), the communicator's own broadcast, and broadcast_state_dict through the adapter.
#include "broadcast_cases.h"

#include <climits>
#include <cstring>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "../driver/utilities_under_test.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"

#if STAGEKIT_DIST_BENCH_MPI
#include <mpi.h>
#endif

namespace stagekit::perf::broadcast {
namespace {

constexpr int kRoot = 0;
constexpr std::int64_t kColumns = 64;  // float32 columns of every tensor: 256-byte rows
constexpr int kManyTensors = 64;

std::byte pattern(std::size_t i) { return static_cast<std::byte>((i * 131 + 7) & 0xff); }

std::span<std::byte> bytes_of(const Storage& s) { return {static_cast<std::byte*>(s.data()), s.nbytes()}; }

// S bytes on every rank: the pattern on rank 0, touched zeros elsewhere; verify() checks that every
// rank holds the pattern.
class BufferCase : public RankCase {
 public:
  BufferCase(const dist::Communicator& comm, std::size_t bytes)
      : root_(comm.rank() == kRoot), buffer_(std::make_shared<Storage>(Storage::allocate(bytes))) {
    const std::span<std::byte> b = bytes_of(*buffer_);
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = root_ ? pattern(i) : std::byte{0};
  }
  std::string verify() override {
    const std::span<std::byte> b = bytes_of(*buffer_);
    for (std::size_t i = 0; i < b.size(); ++i) {
      if (b[i] != pattern(i)) return fmt::format("byte {} differs from rank {}'s", i, kRoot);
    }
    return {};
  }

 protected:
  bool root_;
  std::shared_ptr<Storage> buffer_;  // the memory owner of an in-place broadcast
};

class MpiBcastLimit : public BufferCase {
 public:
  MpiBcastLimit(const dist::Communicator& comm, std::size_t bytes) : BufferCase(comm, bytes) {
    if (bytes > static_cast<std::size_t>(INT_MAX)) throw Unsupported("limit/mpi_bcast broadcasts at most 2 GiB");
  }
  void run(dist::Communicator&) override {
#if STAGEKIT_DIST_BENCH_MPI
    const int rc = MPI_Bcast(buffer_->data(), static_cast<int>(buffer_->nbytes()), MPI_BYTE, kRoot, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) throw CommunicationError(fmt::format("MPI_Bcast returned {}", rc));
#else
    throw Unsupported("this build has no MPI");
#endif
  }
};

class MemcpyBcastLimit : public BufferCase {
 public:
  MemcpyBcastLimit(const dist::Communicator& comm, std::size_t bytes)
      : BufferCase(comm, bytes), source_(Storage::allocate(bytes)) {
    const std::span<std::byte> s = bytes_of(source_);
    for (std::size_t i = 0; i < s.size(); ++i) s[i] = pattern(i);
  }
  void run(dist::Communicator&) override {
    if (!root_ && source_.nbytes() > 0) std::memcpy(buffer_->data(), source_.data(), source_.nbytes());
  }

 private:
  Storage source_;  // what rank 0 holds, in this rank's own memory
};

class BroadcastCase : public BufferCase {
 public:
  using BufferCase::BufferCase;
  void run(dist::Communicator& comm) override {
    const std::vector<std::span<std::byte>> items{bytes_of(*buffer_)};
    comm.broadcast_many(items, kRoot, buffer_);
  }
};

struct Fixture {
  std::vector<std::string> names;
  std::vector<Tensor> full;
};

std::shared_ptr<const Fixture> make_fixture(bool many, std::size_t bytes) {
  const auto rows = static_cast<std::int64_t>(bytes / (kColumns * 4));
  auto f = std::make_shared<Fixture>();
  const int count = many ? kManyTensors : 1;
  for (int i = 0; i < count; ++i) {
    f->names.push_back(many ? fmt::format("layers.{}.weight", i) : std::string("weight"));
    f->full.push_back(Tensor::random({rows / count, kColumns}, DType::float32, 2000 + static_cast<std::uint64_t>(i)));
  }
  return f;
}

// Rank 0 holds the full dict; every rank's local dict holds a zeroed tensor of each full tensor's
// shape under its key (reset before every iteration, untimed).
class BroadcastStateDictCase : public RankCase {
 public:
  BroadcastStateDictCase(const dist::Communicator& comm, std::shared_ptr<const Fixture> f)
      : f_(std::move(f)), utilities_(rank_utilities(/*needs_dtensor=*/false)) {
    auto full = std::make_shared<Dict>();
    if (comm.rank() == kRoot) {
      for (std::size_t i = 0; i < f_->full.size(); ++i) full->set(DictKey(f_->names[i]), Value(f_->full[i]));
    }
    full_ = Value(full);
    for (const Tensor& t : f_->full)
      placeholders_.push_back(Tensor::zeros(IntList(t.sizes().begin(), t.sizes().end()), t.dtype()));
  }
  void prepare() override {
    auto local = std::make_shared<Dict>();
    for (std::size_t i = 0; i < f_->full.size(); ++i) local->set(DictKey(f_->names[i]), Value(placeholders_[i]));
    local_ = Value(local);  // the previous result is freed here, untimed
  }
  void run(dist::Communicator& comm) override {
    utilities_->broadcast_state_dict(full_, local_, comm, /*strict=*/false, /*cpu_offload=*/false, Device::cpu());
  }
  std::string verify() override { return differs_from_full(local_, f_->names, f_->full, "local dict"); }

 private:
  std::shared_ptr<const Fixture> f_;
  std::unique_ptr<conformance::StateDictUtilitiesUnderTest> utilities_;
  Value full_;
  std::vector<Tensor> placeholders_;
  Value local_;
};

}  // namespace

std::unique_ptr<RankCase> make_mpi_bcast_limit(dist::Communicator& comm, std::size_t bytes) {
  require_world(comm, "mpi", "limit/mpi_bcast", "limit/memcpy_bcast");
  return std::make_unique<MpiBcastLimit>(comm, bytes);
}

std::unique_ptr<RankCase> make_memcpy_bcast_limit(dist::Communicator& comm, std::size_t bytes) {
  require_world(comm, "thread", "limit/memcpy_bcast", "limit/mpi_bcast");
  return std::make_unique<MemcpyBcastLimit>(comm, bytes);
}

std::unique_ptr<RankCase> make_broadcast(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<BroadcastCase>(comm, bytes);
}

CaseFactory broadcast_state_dict_factory(bool many, std::size_t bytes) {
  struct Lazy {
    std::once_flag once;
    std::shared_ptr<const Fixture> value;
  };
  auto lazy = std::make_shared<Lazy>();
  return [lazy, many, bytes](dist::Communicator& comm) -> std::unique_ptr<RankCase> {
    std::call_once(lazy->once, [&] { lazy->value = make_fixture(many, bytes); });
    return std::make_unique<BroadcastStateDictCase>(comm, lazy->value);
  };
}

}  // namespace stagekit::perf::broadcast
