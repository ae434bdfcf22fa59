// The replication cases must bite: replication stagers that each break one documented property
// (spec B.3.5, C.3) are run through the cases that check it, which must fail, while a case that does
// not depend on that property passes.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "case_outcome.h"
#include "container_mutations.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/case.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/testing/forwarding_communicator.h"

namespace stagekit::conformance {
namespace {
namespace fs = std::filesystem;

enum class Flaw {
  returns_own_state_dict,        // no exchange: hands back what it was given
  loses_sharing,                 // every leaf gets its own copy of its storage
  keeps_sender_placement,        // ShardedTensor shards stay placed on the sender
  accepts_odd_world,             // makes a stager where no pairing exists
  null_for_odd_world,            // returns no stager for an odd world, without an error
  leaves_temp_files,             // leaves a temporary file next to the replica
  stale_loader,                  // a damaged file loads as the last good tree instead of failing
  tears_on_failure,              // a failed stage leaves a half-written replica behind
  persist_error_unnamed,         // a failed replica write raises an I/O error that names no rank
  reports_late,                  // a timed-out exchange is reported only after waiting its timeout once more
  unchecked_region,              // the loader does not verify a few bytes of its format (as padding no
                                 // checksum covers): damage there loads as if nothing happened
  ignores_storage_dir,           // persists into a directory of its own whatever storage_dir says
  close_removes_replica,         // close() deletes the storage directory, replica included
  default_dir_made_lazily,       // without a storage directory, makes its own only at the first stage
  accepts_parameters,            // replicates a parameter leaf as the plain tensor it holds
  plain_containers,              // the replica's dict subclasses and namedtuples become plain dicts and tuples
  world_size_of_default_group,   // pairs ranks with the size of the whole world (upstream's default group)
                                 // while addressing ranks of the sub-communicator it was given
  timeout_when_receiving_first,  // the rank of a pair that sends first waits 30 minutes whatever the
                                 // timeout says; only the one that receives first applies it
  drops_empty_containers,        // the replica, returned and loaded, loses every dict entry holding an empty
                                 // dict or list (an optimizer's state before its first step)
  file_name_swapped,             // persists (and reports) rank_<p>_replica_partner_<r>: the two ranks swapped
  loader_dtensor_rank0,          // load_replica rebuilds every DTensor with rank 0 (stage()'s replica is right)
  default_dir_name,              // without a storage directory, makes "stagekit-replica-XXXXXX" in the temp dir
  timeout_unnamed,               // a timed-out exchange raises a timeout error that names no rank
  no_parent_dirs,                // refuses a storage directory whose parent does not exist (a plain mkdir)
  partial_as_replicate,          // the replica, returned and loaded, turns a DTensor's Partial placement into Replicate
  float8_swapped,                // the replica, returned and loaded, swaps the two float8 dtypes over the same bytes
  drops_tensor_attrs,            // the replica, returned and loaded, drops tensor attributes holding a tensor or a
                                 // container (plain-valued ones are kept)
  wipes_existing_dir,            // a stager made on an existing storage directory removes the replicas in it
  first_shard_only,              // the replica, returned and loaded, keeps only a ShardedTensor's first local shard
};

// The world the replication cases run on (kWorld4): what upstream's stager reads as the size of the
// default process group, whatever group it was given (spec C.3.2).
constexpr int kDefaultGroupSize = 4;

// The sub-communicator a stager was given, but reporting the default group's size: every operation
// goes to the sub-communicator (with this one's timeout), so ranks past its own size do not exist.
class DefaultGroupSized final : public stagekit::testing::ForwardingCommunicator {
 public:
  explicit DefaultGroupSized(dist::Communicator& group) : ForwardingCommunicator(group) {}
  int size() const override { return kDefaultGroupSize; }  // the flaw
};

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

Value clone_leaves(const Value& v) {
  if (v.is_tensor()) return Value(v.as_tensor().clone());
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  for (const auto& [k, i] : v.as_dict().entries()) d->set(k, clone_leaves(i));
  return Value(d);
}

Value place_on_sender(const Value& v) {
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  for (const auto& [k, i] : v.as_dict().entries()) {
    if (i.kind() != Value::Kind::sharded_tensor) {
      d->set(k, i);
      continue;
    }
    const ShardedTensor& st = *i.as_sharded_tensor_node();
    std::vector<LocalTensorShard> shards = st.local_shards();
    int owner = st.rank();  // the sender: the rank whose global shard has this local shard's offsets
    for (std::size_t s = 0; s < st.metadata().shards.size(); ++s) {
      if (st.metadata().shards[s].offsets == shards[0].metadata.offsets) owner = st.metadata().shards[s].placement_rank;
    }
    for (LocalTensorShard& shard : shards) shard.metadata.placement_rank = owner;
    d->set(k, Value(std::make_shared<ShardedTensor>(std::move(shards), st.metadata(), owner)));
  }
  return Value(d);
}

// The top-level entries of a dict with parameters replaced by plain tensors (one level down too).
Value without_parameters(const Value& v) {
  if (v.is_tensor() && v.as_tensor().is_parameter()) return Value(v.as_tensor().on_storage(v.as_tensor().storage()));
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  for (const auto& [k, i] : v.as_dict().entries()) d->set(k, without_parameters(i));
  return Value(d);
}

bool empty_dict_or_list(const Value& v) {
  return (v.kind() == Value::Kind::dict && v.as_dict().size() == 0) ||
         (v.kind() == Value::Kind::list && v.as_list().items.empty());
}

// `v` without the dict entries that hold an empty dict or list, at any depth under dicts and lists. A
// dict that loses an entry is rebuilt (its type kept); every other node is the one given (lists are
// updated in place), so nodes reached twice stay shared.
Value without_empty_containers(const Value& v) {
  if (v.kind() == Value::Kind::list) {
    for (Value& item : v.as_list().items) item = without_empty_containers(item);
    return v;
  }
  if (v.kind() != Value::Kind::dict) return v;
  Dict& in = v.as_dict();
  auto out = std::make_shared<Dict>();
  out->set_type_name(in.type_name());
  out->set_default_factory(in.default_factory());
  bool dropped = false;
  for (const auto& [k, item] : in.entries()) {
    if (empty_dict_or_list(item)) {
      dropped = true;
    } else {
      out->set(k, without_empty_containers(item));
    }
  }
  if (!dropped) {
    for (const auto& [k, item] : out->entries()) in.set(k, item);
    return v;
  }
  return Value(out);
}

// `v` with every DTensor in its dicts rebuilt as rank 0's (same local tensor and spec).
Value dtensors_on_rank0(const Value& v) {
  if (v.kind() == Value::Kind::dtensor) {
    const DTensor& d = *v.as_dtensor_node();
    return Value(std::make_shared<DTensor>(d.local(), d.spec(), 0));
  }
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  for (const auto& [k, i] : v.as_dict().entries()) d->set(k, dtensors_on_rank0(i));
  return Value(d);
}

// Calls `f` on every value reachable from `v` through dicts and lists; `f` may replace the value.
void for_each_slot(Value& v, const std::function<void(Value&)>& f) {
  f(v);
  if (v.kind() == Value::Kind::dict) {
    Dict& d = v.as_dict();
    const std::vector<Dict::Entry> entries = d.entries();
    for (const auto& [k, item] : entries) {
      Value x = item;
      for_each_slot(x, f);
      if (x.identity() != item.identity() || x.kind() != item.kind()) d.set(k, x);
    }
  } else if (v.kind() == Value::Kind::list) {
    for (Value& x : v.as_list().items) for_each_slot(x, f);
  }
}

bool plain_attribute(const Value& a) {
  switch (a.kind()) {
    case Value::Kind::none:
    case Value::Kind::boolean:
    case Value::Kind::integer:
    case Value::Kind::floating:
    case Value::Kind::string:
    case Value::Kind::bytes: return true;
    default: return false;
  }
}

// The distortion the flaws that damage the replica's values make of a replica (returned or loaded).
Value distort_replica(Flaw flaw, Value v) {
  for_each_slot(v, [flaw](Value& s) {
    if (flaw == Flaw::partial_as_replicate && s.kind() == Value::Kind::dtensor) {
      const DTensor& d = *s.as_dtensor_node();
      DTensorSpec spec = d.spec();
      for (Placement& p : spec.placements) {
        if (p.kind == Placement::Kind::partial) p = Placement::replicate();
      }
      s = Value(std::make_shared<DTensor>(d.local(), spec, d.rank()));
    } else if (flaw == Flaw::float8_swapped && s.is_tensor()) {
      const Tensor& t = s.as_tensor();
      if (t.dtype() != DType::float8_e4m3fn && t.dtype() != DType::float8_e5m2) return;
      const DType other = t.dtype() == DType::float8_e4m3fn ? DType::float8_e5m2 : DType::float8_e4m3fn;
      Tensor relabelled = Tensor::from_storage(t.storage(), other, IntList(t.sizes().begin(), t.sizes().end()),
                                               IntList(t.strides().begin(), t.strides().end()), t.storage_offset());
      for (const auto& [name, a] : t.attrs()) relabelled.set_attr(name, a);
      s = Value(relabelled);
    } else if (flaw == Flaw::drops_tensor_attrs && s.is_tensor()) {
      const Tensor& t = s.as_tensor();
      bool any = false;
      for (const auto& [name, a] : t.attrs()) any = any || !plain_attribute(a);
      if (!any || t.is_parameter()) return;
      Tensor kept = t.on_storage(t.storage());
      kept.set_requires_grad(t.requires_grad());
      for (const auto& [name, a] : t.attrs()) {
        if (plain_attribute(a)) kept.set_attr(name, a);
      }
      s = Value(kept);
    } else if (flaw == Flaw::first_shard_only && s.kind() == Value::Kind::sharded_tensor) {
      const ShardedTensor& st = *s.as_sharded_tensor_node();
      if (st.local_shards().size() < 2) return;
      s = Value(std::make_shared<ShardedTensor>(std::vector<LocalTensorShard>{st.local_shards()[0]}, st.metadata(),
                                                st.rank()));
    }
  });
  return v;
}

bool distorts_replica(Flaw flaw) {
  return flaw == Flaw::partial_as_replicate || flaw == Flaw::float8_swapped || flaw == Flaw::drops_tensor_attrs ||
         flaw == Flaw::first_shard_only;
}

class FlawedStager final : public ReplicationStagerUnderTest {
 public:
  FlawedStager(std::unique_ptr<ReplicationStagerUnderTest> inner, Flaw flaw, std::chrono::milliseconds timeout,
               std::unique_ptr<dist::Communicator> comm = nullptr)
      : comm_(std::move(comm)), inner_(std::move(inner)), flaw_(flaw), timeout_(timeout) {}
  Value stage(const Value& sd) override {
    if (flaw_ == Flaw::returns_own_state_dict) return sd;
    if (flaw_ == Flaw::default_dir_made_lazily) {
      std::error_code ec;
      fs::create_directories(inner_->storage_dir(), ec);
    }
    if (flaw_ == Flaw::leaves_temp_files) std::ofstream(inner_->persisted_path() + ".partial") << "x";
    if (flaw_ == Flaw::persist_error_unnamed) {
      try {
        return inner_->stage(sd);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::io) throw;
        throw IoError("could not write the replica file");
      }
    }
    if (flaw_ == Flaw::tears_on_failure) {
      try {
        return inner_->stage(sd);
      } catch (const Error&) {
        const std::string path = inner_->persisted_path();
        std::error_code ec;
        fs::resize_file(path, fs::file_size(path, ec) / 2, ec);
        throw;
      }
    }
    if (flaw_ == Flaw::timeout_unnamed) {
      try {
        return inner_->stage(sd);
      } catch (const Error& e) {
        if (e.code() != ErrorCode::timeout) throw;
        throw TimeoutError("the replica exchange timed out");
      }
    }
    if (flaw_ == Flaw::reports_late) {
      try {
        return inner_->stage(sd);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::timeout) std::this_thread::sleep_for(timeout_);
        throw;
      }
    }
    Value got = inner_->stage(flaw_ == Flaw::accepts_parameters ? without_parameters(sd) : sd);
    if (flaw_ == Flaw::file_name_swapped) {
      std::error_code ec;
      fs::rename(inner_->persisted_path(), persisted_path(), ec);
    }
    if (flaw_ == Flaw::loses_sharing) return clone_leaves(got);
    if (flaw_ == Flaw::plain_containers) return plain_top_level_containers(got);
    if (flaw_ == Flaw::drops_empty_containers) return without_empty_containers(got);
    if (flaw_ == Flaw::keeps_sender_placement) return place_on_sender(got);
    if (distorts_replica(flaw_)) return distort_replica(flaw_, got);
    return got;
  }
  std::string storage_dir() const override { return inner_ ? inner_->storage_dir() : std::string("/nonexistent"); }
  std::string persisted_path() const override {
    if (flaw_ != Flaw::file_name_swapped) return inner_->persisted_path();
    const std::string name = "rank_" + std::to_string(partner_) + "_replica_partner_" + std::to_string(rank_);
    return (fs::path(inner_->storage_dir()) / (name + ".replica")).string();
  }
  // This stager's rank and its partner's, for the flaws that name files after them.
  void set_pair(int rank, int partner) {
    rank_ = rank;
    partner_ = partner;
  }
  void close() override {
    if (!inner_) return;
    inner_->close();
    if (flaw_ == Flaw::close_removes_replica) {
      std::error_code ec;
      fs::remove_all(inner_->storage_dir(), ec);
    }
  }

 private:
  std::unique_ptr<dist::Communicator> comm_;  // what inner_ was made with, where the flaw made one (outlives it)
  std::unique_ptr<ReplicationStagerUnderTest> inner_;
  Flaw flaw_;
  std::chrono::milliseconds timeout_;
  int rank_ = -1;
  int partner_ = -1;
};

class FlawedImplementation final : public Implementation {
 public:
  explicit FlawedImplementation(Flaw flaw) : flaw_(flaw), reference_(make_reference_implementation()) {}
  std::string name() const override { return "replication-mutant"; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override { return reference_->capabilities(); }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& c) override { return reference_->make_stager(c); }
  std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager(dist::Communicator& comm,
                                                                      const ReplicationConfig& config) override {
    if (flaw_ == Flaw::null_for_odd_world && comm.size() % 2 != 0) return nullptr;
    if (flaw_ == Flaw::accepts_odd_world && comm.size() % 2 != 0) {
      return std::make_unique<FlawedStager>(nullptr, flaw_, config.timeout);
    }
    ReplicationConfig c = config;
    if (flaw_ == Flaw::world_size_of_default_group) {
      auto sized = std::make_unique<DefaultGroupSized>(comm);
      auto inner = reference_->make_replication_stager(*sized, c);
      return std::make_unique<FlawedStager>(std::move(inner), flaw_, config.timeout, std::move(sized));
    }
    if (flaw_ == Flaw::no_parent_dirs && c.storage_dir) {
      const fs::path dir(*c.storage_dir);
      std::error_code ec;
      if (!fs::exists(dir, ec) && !fs::is_directory(dir.parent_path(), ec)) {
        throw IoError("cannot create the storage directory " + dir.string() + ": No such file or directory");
      }
    }
    if (flaw_ == Flaw::ignores_storage_dir) c.storage_dir.reset();
    if (flaw_ == Flaw::wipes_existing_dir && c.storage_dir) {  // "stale replicas from an earlier run"
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(*c.storage_dir, ec)) {
        const std::string name = entry.path().filename().string();
        if (name.starts_with("rank_") && name.find("_replica_partner_") != std::string::npos) {
          fs::remove(entry.path(), ec);
        }
      }
    }
    if (flaw_ == Flaw::default_dir_name && !c.storage_dir) {
      std::string templ = (fs::temp_directory_path() / "stagekit-replica-XXXXXX").string();
      if (::mkdtemp(templ.data()) == nullptr) throw IoError("cannot create the storage directory " + templ);
      c.storage_dir = templ;
    }
    if (flaw_ == Flaw::timeout_when_receiving_first && comm.size() % 2 == 0 &&
        comm.rank() < (comm.rank() + comm.size() / 2) % comm.size()) {
      c.timeout = std::chrono::minutes(30);
    }
    if (flaw_ == Flaw::default_dir_made_lazily && !c.storage_dir) {
      auto inner = reference_->make_replication_stager(comm, c);
      std::error_code ec;
      fs::remove(inner->storage_dir(), ec);  // (still empty) made again by the first stage
      return std::make_unique<FlawedStager>(std::move(inner), flaw_, config.timeout);
    }
    auto stager = std::make_unique<FlawedStager>(reference_->make_replication_stager(comm, c), flaw_, config.timeout);
    stager->set_pair(comm.rank(), (comm.rank() + comm.size() / 2) % comm.size());
    return stager;
  }
  Value load_replica(const std::string& path) override {
    if (flaw_ == Flaw::unchecked_region) return load_ignoring_a_region(path);
    if (flaw_ == Flaw::drops_empty_containers) return without_empty_containers(reference_->load_replica(path));
    if (flaw_ == Flaw::loader_dtensor_rank0) return dtensors_on_rank0(reference_->load_replica(path));
    if (distorts_replica(flaw_)) return distort_replica(flaw_, reference_->load_replica(path));
    if (flaw_ != Flaw::stale_loader) return reference_->load_replica(path);
    std::lock_guard lock(mutex_);
    try {
      last_good_ = reference_->load_replica(path);
    } catch (const Error&) {
      if (last_good_.is_none()) throw;
    }
    return last_good_;
  }

 private:
  // Bytes [n/100 + 1, n/100 + 5) of an n-byte file, between the positions a sampled check would
  // try, are taken from the last file that loaded from the same directory (each rank damages its
  // own copies in its own directory), as if the format did not check them.
  Value load_ignoring_a_region(const std::string& path) {
    std::vector<char> bytes = file_bytes(path);
    std::lock_guard lock(mutex_);
    std::vector<char>& good = last_good_bytes_[fs::path(path).parent_path().string()];
    if (good.size() == bytes.size()) {
      const std::size_t begin = bytes.size() / 100 + 1;
      for (std::size_t i = begin; i < begin + 4 && i < bytes.size(); ++i) bytes[i] = good[i];
      const std::string patched = path + ".patched";
      std::ofstream(patched, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
      Value out = reference_->load_replica(patched);
      fs::remove(patched);
      return out;
    }
    Value out = reference_->load_replica(path);
    good = std::move(bytes);
    return out;
  }

  Flaw flaw_;
  std::unique_ptr<Implementation> reference_;
  std::mutex mutex_;
  Value last_good_;
  std::map<std::string, std::vector<char>> last_good_bytes_;  // by directory
};

void expect_caught(Flaw flaw, const std::vector<std::string>& must_fail, const std::string& control) {
  FlawedImplementation impl(flaw);
  for (const std::string& id : must_fail) {
    EXPECT_EQ(case_outcome(impl, id), Outcome::fail) << "flaw " << static_cast<int>(flaw) << " not caught by " << id;
  }
  EXPECT_EQ(case_outcome(impl, control), Outcome::pass)
      << "flaw " << static_cast<int>(flaw) << " should pass " << control;
}

TEST(ReplicationMutants, ReturnsItsOwnStateDict) {
  expect_caught(Flaw::returns_own_state_dict,
                {"replication.basic.cpu.default.ws2", "replication.dtensors.cpu.default.ws4",
                 "replication.mixed_leaves.cpu.default.ws2"},
                "replication.odd_world_refused.cpu.default.ws3");
}

TEST(ReplicationMutants, LosesStorageSharing) {
  expect_caught(Flaw::loses_sharing,
                {"replication.storage_sharing.cpu.default.ws2", "replication.storage_sharing.cpu.default.ws4"},
                "replication.basic.cpu.default.ws4");
}

TEST(ReplicationMutants, KeepsTheSendersShardPlacement) {
  expect_caught(Flaw::keeps_sender_placement,
                {"replication.sharded_tensors.cpu.default.ws2", "replication.sharded_tensors.cpu.default.ws4"},
                "replication.dtensors.cpu.default.ws2");
}

TEST(ReplicationMutants, AcceptsAnOddWorld) {
  expect_caught(Flaw::accepts_odd_world,
                {"replication.odd_world_refused.cpu.default.ws3", "replication.odd_world_refused.cpu.default"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, LeavesTemporaryFiles) {
  expect_caught(Flaw::leaves_temp_files,
                {"replication.repeated_stages.cpu.default.ws2", "replication.persist_failure.cpu.default.ws2"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, LoadsDamagedFilesAsTheLastGoodTree) {
  expect_caught(Flaw::stale_loader,
                {"replication.corrupted_replica.cpu.default.ws2", "replication.truncated_replica.cpu.default.ws2"},
                "replication.persistence_custom_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, ReportsATimeoutOnlyAfterWaitingItTwice) {
  expect_caught(Flaw::reports_late, {"replication.partner_missing.cpu.default.ws2"},
                "replication.repeated_stages.cpu.default.ws2");
}

TEST(ReplicationMutants, TimeoutOnlyWhereTheRankReceivesFirst) {
  expect_caught(
      Flaw::timeout_when_receiving_first,
      {"replication.partner_missing.cpu.default.ws2", "replication.partner_killed_mid_exchange.cpu.default.ws4"},
      "replication.repeated_stages.cpu.default.ws2");
}

TEST(ReplicationMutants, LeavesARegionOfItsFormatUnchecked) {
  expect_caught(Flaw::unchecked_region, {"replication.corrupted_replica.cpu.default.ws2"},
                "replication.truncated_replica.cpu.default.ws2");
}

TEST(ReplicationMutants, TearsTheReplicaWhenAStageFails) {
  expect_caught(
      Flaw::tears_on_failure,
      {"replication.partner_missing.cpu.default.ws2", "replication.partner_killed_mid_exchange.cpu.default.ws2",
       "replication.persist_failure.cpu.default.ws2"},
      "replication.repeated_stages.cpu.default.ws2");
}

TEST(ReplicationMutants, PersistErrorNamingNoRank) {
  expect_caught(Flaw::persist_error_unnamed,
                {"replication.persist_failure.cpu.default.ws2", "replication.persist_failure.cpu.default.ws4"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, ReturnsNoStagerForAnOddWorldWithoutAnError) {
  expect_caught(Flaw::null_for_odd_world,
                {"replication.odd_world_refused.cpu.default.ws3", "replication.odd_world_refused.cpu.default"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, AcceptsParameterLeaves) {
  expect_caught(
      Flaw::accepts_parameters,
      {"replication.parameter_leaf_refused.cpu.default.ws2", "replication.parameter_leaf_refused.cpu.default.ws4"},
      "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, LosesContainerTypes) {
  expect_caught(Flaw::plain_containers,
                {"replication.mixed_leaves.cpu.default.ws2", "replication.mixed_leaves.cpu.default.ws4"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, DropsEmptyContainers) {
  expect_caught(Flaw::drops_empty_containers,
                {"replication.mixed_leaves.cpu.default.ws2", "replication.mixed_leaves.cpu.default.ws4"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, CloseRemovesTheReplica) {
  expect_caught(Flaw::close_removes_replica, {"replication.close_keeps_replica.cpu.default.ws2"},
                "replication.persistence_default_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, DefaultDirectoryMadeOnlyAtTheFirstStage) {
  expect_caught(Flaw::default_dir_made_lazily, {"replication.persistence_default_dir.cpu.default.ws2"},
                "replication.persistence_custom_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, IgnoresTheStorageDirectory) {
  expect_caught(Flaw::ignores_storage_dir, {"replication.persistence_custom_dir.cpu.default.ws2"},
                "replication.persistence_default_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, SwapsTheRanksInTheReplicaFileName) {
  expect_caught(Flaw::file_name_swapped, {"replication.persisted_file_name.cpu.default.ws2"},
                "replication.persistence_custom_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, LoadsDTensorsAsRankZeros) {
  expect_caught(Flaw::loader_dtensor_rank0,
                {"replication.dtensor_round_trip.cpu.default.ws2", "replication.dtensor_round_trip.cpu.default.ws4"},
                "replication.dtensors.cpu.default.ws4");
}

TEST(ReplicationMutants, NamesTheDefaultDirectoryItsOwnWay) {
  expect_caught(Flaw::default_dir_name, {"replication.default_dir_name.cpu.default.ws2"},
                "replication.persistence_default_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, TimeoutErrorNamingNoRank) {
  expect_caught(
      Flaw::timeout_unnamed,
      {"replication.partner_missing.cpu.default.ws2", "replication.partner_killed_mid_exchange.cpu.default.ws2"},
      "replication.repeated_stages.cpu.default.ws2");
}

TEST(ReplicationMutants, RefusesAStorageDirectoryWithoutItsParents) {
  expect_caught(Flaw::no_parent_dirs, {"replication.storage_dir_parents.cpu.default.ws2"},
                "replication.persistence_custom_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, PairsRanksWithTheDefaultGroupsSize) {
  expect_caught(Flaw::world_size_of_default_group, {"replication.subgroup_ranks.cpu.default.ws4"},
                "replication.dtensors.cpu.default.ws4");
}

TEST(ReplicationMutants, TurnsPartialPlacementsIntoReplicate) {
  expect_caught(Flaw::partial_as_replicate,
                {"replication.dtensor_round_trip.cpu.default.ws2", "replication.dtensor_round_trip.cpu.default.ws4"},
                "replication.dtensors.cpu.default.ws4");
}

TEST(ReplicationMutants, SwapsTheFloat8DTypes) {
  expect_caught(Flaw::float8_swapped,
                {"replication.mixed_leaves.cpu.default.ws2", "replication.mixed_leaves.cpu.default.ws4"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, DropsTensorAttributesHoldingTensorsOrContainers) {
  expect_caught(Flaw::drops_tensor_attrs,
                {"replication.storage_sharing.cpu.default.ws2", "replication.storage_sharing.cpu.default.ws4"},
                "replication.basic.cpu.default.ws2");
}

TEST(ReplicationMutants, WipesTheReplicasOfAnExistingDirectory) {
  expect_caught(Flaw::wipes_existing_dir, {"replication.close_keeps_replica.cpu.default.ws2"},
                "replication.persistence_custom_dir.cpu.default.ws2");
}

TEST(ReplicationMutants, KeepsOnlyTheFirstLocalShard) {
  expect_caught(Flaw::first_shard_only,
                {"replication.sharded_tensor_round_trip.cpu.default.ws2",
                 "replication.sharded_tensor_round_trip.cpu.default.ws4"},
                "replication.sharded_tensors.cpu.default.ws2");
}

}  // namespace
}  // namespace stagekit::conformance
