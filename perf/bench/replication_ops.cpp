// The replication operations as benchmarked (replicate/exchange, replicate/persist,
// replicate/stage): every rank's state dict is kTensors float32 tensors of S/kTensors bytes with
// values fixed by (rank, tensor, position), so that a rank can regenerate its partner's dict to
// check what it received or persisted, tensor by tensor.
//
// replicate/stage measures the implementation under test through the adapter interface
// (make_replication_stager(), load_replica() to verify). replicate/exchange and replicate/persist
// time the two parts of the reference's stage that the adapter interface does not offer on their
// own (an exchange without persistence; writing a replica file): they run only when the
// implementation under test is the reference (built in, or its plugin), and are not_supported for
// any other implementation.
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>

#include <fmt/format.h>

#include "../driver/replica_dir.h"
#include "replication_cases.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/config.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/error.h"
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

// The rows that time the reference's own parts run only when the reference is under test.
void require_reference(const char* row) {
  const conformance::Implementation& impl = *dist_context().implementation;
  if (impl.name() != conformance::kReferenceImplementationName || impl.version() != STAGEKIT_VERSION) {
    throw Unsupported(
        fmt::format("{} times a part of the reference's replication stager that the adapter interface "
                    "does not offer on its own; it runs only for the reference {} (the implementation "
                    "under test is {} {})",
                    row, STAGEKIT_VERSION, impl.name(), impl.version()));
  }
}

// replicate/exchange: the reference's ReplicationStager::stage() without persistence.
class ExchangeCase : public RankCase {
 public:
  ExchangeCase(dist::Communicator& comm, std::size_t bytes)
      : bytes_(bytes),
        partner_(paired_partner(comm)),
        state_dict_(rank_state_dict(comm.rank(), bytes)),
        stager_(comm, options(comm)) {}

  void prepare() override { received_ = Value(); }
  void run(dist::Communicator&) override { received_ = stager_.stage(state_dict_); }
  std::string verify() override { return compare_to_rank(received_, partner_, bytes_, "received dict"); }

 private:
  static replicate::ReplicationOptions options(const dist::Communicator& comm) {
    replicate::ReplicationOptions options;
    options.timeout = comm.timeout();
    options.storage_dir = replica_rank_dir(comm.rank());
    options.persist = false;
    return options;
  }

  std::size_t bytes_;
  int partner_;
  Value state_dict_;
  replicate::ReplicationStager stager_;
  Value received_;
};

// replicate/stage: the implementation's replication stager (exchange, then persist); the previous
// replica is removed before each iteration (untimed), like limit/seq_write's file.
class StageCase : public RankCase {
 public:
  StageCase(dist::Communicator& comm, std::size_t bytes)
      : impl_(*dist_context().implementation),
        bytes_(bytes),
        partner_(paired_partner(comm)),
        state_dict_(rank_state_dict(comm.rank(), bytes)) {
    if (!impl_.capabilities().replication) {
      throw Unsupported("the implementation does not declare the replication capability");
    }
    conformance::ReplicationConfig config;
    config.timeout = comm.timeout();
    config.storage_dir = replica_rank_dir(comm.rank()).string();
    stager_ = impl_.make_replication_stager(comm, config);
    if (!stager_) {
      throw InternalError(
          "make_replication_stager() returned nothing although the implementation declares replication");
    }
  }
  ~StageCase() override {
    if (stager_) remove_quietly(stager_->persisted_path());
  }
  StageCase(const StageCase&) = delete;
  StageCase& operator=(const StageCase&) = delete;

  void prepare() override {
    received_ = Value();
    remove_quietly(stager_->persisted_path());
  }
  void run(dist::Communicator&) override { received_ = stager_->stage(state_dict_); }
  std::string verify() override {
    std::string wrong = compare_to_rank(received_, partner_, bytes_, "received dict");
    if (wrong.empty()) {
      wrong = compare_to_rank(impl_.load_replica(stager_->persisted_path()), partner_, bytes_, "persisted replica");
    }
    return wrong;
  }

 private:
  conformance::Implementation& impl_;
  std::size_t bytes_;
  int partner_;
  Value state_dict_;
  std::unique_ptr<conformance::ReplicationStagerUnderTest> stager_;
  Value received_;
};

// replicate/persist: write_replica(sync) of this rank's packed dict into its replica directory; the
// previous file is removed before each iteration (untimed).
class PersistCase : public RankCase {
 public:
  PersistCase(const dist::Communicator& comm, std::size_t bytes)
      : bytes_(bytes),
        rank_(comm.rank()),
        path_(replica_rank_dir(rank_) / "persist.replica"),
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
  require_reference("replicate/exchange");
  return std::make_unique<ExchangeCase>(comm, bytes);
}

std::unique_ptr<RankCase> make_persist(dist::Communicator& comm, std::size_t bytes) {
  require_reference("replicate/persist");
  return std::make_unique<PersistCase>(comm, bytes);
}

std::unique_ptr<RankCase> make_stage(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<StageCase>(comm, bytes);
}

}  // namespace stagekit::perf::replication
