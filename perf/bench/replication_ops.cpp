// The replication operations as benchmarked (replicate/exchange, replicate/persist,
// replicate/stage): every rank's state dict is kTensors float32 tensors of S/kTensors bytes with
// values fixed by (rank, tensor, position), so that a rank can regenerate its partner's dict to
// check what it received or persisted, tensor by tensor.
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "../driver/replica_dir.h"
#include "replication_cases.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_state_dict.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/replicate/replication_stager.h"

namespace stagekit::perf::replication {
namespace fs = std::filesystem;
namespace {

constexpr int kTensors = 8;
constexpr std::int64_t kColumns = 64;  // float32 columns: 256-byte rows

std::string tensor_name(int i) { return fmt::format("layers.{}.weight", i); }

// Finite floats, different at every position below 2^29 and for every (rank, tensor); cheap to make
// (Tensor::random costs seconds per rank at 64 MiB in a debug build, on the setup of every benchmark).
Tensor rank_tensor(int rank, int i, std::size_t bytes) {
  const auto rows = static_cast<std::int64_t>(bytes / kTensors / (kColumns * 4));
  Tensor t = Tensor::empty({rows, kColumns}, DType::float32);
  const auto seed = static_cast<std::uint32_t>(rank * kTensors + i) * 0x9E37'79B9U;
  auto* words = static_cast<std::uint32_t*>(t.data_ptr());
  const auto n = static_cast<std::uint32_t>(t.numel());
  for (std::uint32_t k = 0; k < n; ++k) {
    const std::uint32_t exponent = 127U + ((k >> 23) & 63U);  // 1.0 .. 2^64: never inf or NaN
    words[k] = (exponent << 23) | ((k * 2654435761U + seed) & 0x7F'FFFFU);
  }
  return t;
}

Value rank_state_dict(int rank, std::size_t bytes) {
  auto dict = std::make_shared<Dict>();
  for (int i = 0; i < kTensors; ++i) dict->set(DictKey(tensor_name(i)), Value(rank_tensor(rank, i, bytes)));
  return Value(dict);
}

// Empty when `got` is exactly rank `source`'s state dict, else what differs ("what" names the copy).
std::string compare_to_rank(const Value& got, int source, std::size_t bytes, const char* what) {
  if (got.kind() != Value::Kind::dict) return fmt::format("the {} is not a dict", what);
  if (got.as_dict().size() != kTensors) {
    return fmt::format("the {} has {} entries, not {}", what, got.as_dict().size(), kTensors);
  }
  for (int i = 0; i < kTensors; ++i) {
    const Value* v = got.as_dict().find(DictKey(tensor_name(i)));
    if (v == nullptr || !v->is_tensor()) return fmt::format("{} of the {}: not a tensor", tensor_name(i), what);
    if (!Tensor::equal(v->as_tensor(), rank_tensor(source, i, bytes))) {
      return fmt::format("{} of the {} differs from rank {}'s", tensor_name(i), what, source);
    }
  }
  return {};
}

void remove_quietly(const fs::path& path) noexcept {
  std::error_code ec;
  fs::remove(path, ec);
}

replicate::ReplicationOptions stager_options(const dist::Communicator& comm, bool persist) {
  replicate::ReplicationOptions options;
  options.timeout = comm.timeout();
  options.storage_dir = replica_rank_dir(comm.rank());
  options.persist = persist;
  return options;
}

// replicate/exchange and replicate/stage: ReplicationStager::stage() of this rank's dict; with
// persistence the previous replica is removed before each iteration (untimed), like limit/seq_write's file.
class StagerCase : public RankCase {
 public:
  StagerCase(dist::Communicator& comm, std::size_t bytes, bool persist)
      : bytes_(bytes), partner_(paired_partner(comm)), persist_(persist),
        state_dict_(rank_state_dict(comm.rank(), bytes)), stager_(comm, stager_options(comm, persist)) {}
  ~StagerCase() override {
    if (persist_) remove_quietly(stager_.persisted_path());
  }
  StagerCase(const StagerCase&) = delete;
  StagerCase& operator=(const StagerCase&) = delete;

  void prepare() override {
    received_ = Value();
    if (persist_) remove_quietly(stager_.persisted_path());
  }
  void run(dist::Communicator&) override { received_ = stager_.stage(state_dict_); }
  std::string verify() override {
    std::string wrong = compare_to_rank(received_, partner_, bytes_, "received dict");
    if (wrong.empty() && persist_) {
      wrong = compare_to_rank(replicate::load_replica(stager_.persisted_path()), partner_, bytes_, "persisted replica");
    }
    return wrong;
  }

 private:
  std::size_t bytes_;
  int partner_;
  bool persist_;
  Value state_dict_;
  replicate::ReplicationStager stager_;
  Value received_;
};

// replicate/persist: write_replica(sync) of this rank's packed dict into its replica directory; the
// previous file is removed before each iteration (untimed).
class PersistCase : public RankCase {
 public:
  PersistCase(const dist::Communicator& comm, std::size_t bytes)
      : bytes_(bytes), rank_(comm.rank()), path_(replica_rank_dir(rank_) / "persist.replica"),
        packed_(replicate::pack_state_dict(rank_state_dict(rank_, bytes))) {
    (void)paired_partner(comm);  // the same worlds as the exchange it is part of
  }
  ~PersistCase() override { remove_quietly(path_); }
  PersistCase(const PersistCase&) = delete;
  PersistCase& operator=(const PersistCase&) = delete;

  void prepare() override { remove_quietly(path_); }
  void run(dist::Communicator&) override {
    replicate::ReplicaWriteOptions options;
    options.source_rank = rank_;
    options.holder_rank = rank_;
    options.sync = true;
    (void)replicate::write_replica(path_, packed_, options);
  }
  std::string verify() override {
    return compare_to_rank(replicate::load_replica(path_), rank_, bytes_, "replica file");
  }

 private:
  std::size_t bytes_;
  int rank_;
  fs::path path_;
  replicate::PackedStateDict packed_;
};

}  // namespace

std::unique_ptr<RankCase> make_exchange(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<StagerCase>(comm, bytes, false);
}

std::unique_ptr<RankCase> make_persist(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<PersistCase>(comm, bytes);
}

std::unique_ptr<RankCase> make_stage(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<StagerCase>(comm, bytes, true);
}

}  // namespace stagekit::perf::replication
