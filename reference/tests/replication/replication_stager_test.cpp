// Unit tests of ReplicationStager on the thread world: pairing and refusal of unpairable worlds,
// exact exchange, each distinct storage sent once, DTensor/ShardedTensor round trips, timeouts for a
// missing partner and for one that dies mid-exchange, a partner that cannot pack its state dict,
// persistence (default and custom directories, atomic replacement, nothing left behind).
#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/replicate/replica_transport.h"
#include "stagekit/replicate/replication_stager.h"
#include "stagekit/testing/fault_injection.h"

namespace stagekit::replicate {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

class TempDir {
 public:
  TempDir() {
    std::string templ = (fs::temp_directory_path() / "stagekit-replication-test-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = templ;
  }
  ~TempDir() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A rank's state dict: two leaves viewing one storage, an independent tensor, and scalars.
Value rank_state_dict(int rank, std::uint64_t round = 0) {
  const Tensor base = Tensor::random({16, 8}, DType::float32, 100 * static_cast<std::uint64_t>(rank) + round);
  return Value::dict({{"weight", base},
                      {"weight_rows", base.narrow(0, 4, 4)},
                      {"bias", Tensor::random({8}, DType::float64, 7 + static_cast<std::uint64_t>(rank) + round)},
                      {"step", Value(static_cast<std::int64_t>(round))},
                      {"rank", Value(rank)}});
}

void expect_rank_state_dict(const Value& got, int rank, std::uint64_t round = 0) {
  const Value expected = rank_state_dict(rank, round);
  ASSERT_EQ(got.kind(), Value::Kind::dict);
  ASSERT_EQ(got.as_dict().size(), expected.as_dict().size());
  EXPECT_TRUE(Tensor::equal(got["weight"].as_tensor(), expected["weight"].as_tensor()));
  EXPECT_TRUE(Tensor::equal(got["weight_rows"].as_tensor(), expected["weight_rows"].as_tensor()));
  EXPECT_TRUE(got["weight_rows"].as_tensor().storage().is_alias_of(got["weight"].as_tensor().storage()));
  EXPECT_EQ(got["weight_rows"].as_tensor().storage_offset(), 32);
  EXPECT_TRUE(Tensor::equal(got["bias"].as_tensor(), expected["bias"].as_tensor()));
  EXPECT_EQ(got["step"].as_int(), static_cast<std::int64_t>(round));
  EXPECT_EQ(got["rank"].as_int(), rank);
}

ReplicationOptions options_in(const fs::path& dir, std::chrono::milliseconds timeout = 20s) {
  ReplicationOptions o;
  o.timeout = timeout;
  o.storage_dir = dir;
  return o;
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

TEST(ReplicationPartner, PairsHalfAWorldApart) {
  EXPECT_EQ(replication_partner(0, 4), 2);
  EXPECT_EQ(replication_partner(3, 4), 1);
  EXPECT_EQ(replication_partner(1, 2), 0);
  EXPECT_THROW((void)replication_partner(0, 3), InvalidArgument);
  EXPECT_THROW((void)replication_partner(0, 1), InvalidArgument);
  EXPECT_THROW((void)replication_partner(4, 4), InvalidArgument);
}

TEST(ReplicationStager, RefusesUnpairableWorldsAtConstruction) {
  for (int ws : {1, 3, 5}) {
    std::atomic<int> refused = 0;
    dist::run_thread_world(
        ws,
        [&](dist::Communicator& comm) {
          TempDir dir;
          try {
            ReplicationStager stager(comm, options_in(dir.path()));
          } catch (const InvalidArgument& e) {
            EXPECT_NE(std::string(e.what()).find("even world size"), std::string::npos) << e.what();
            ++refused;
          }
        },
        10s);
    EXPECT_EQ(refused, ws) << "world of " << ws;
  }
}

TEST(ReplicationStager, EachRankReceivesItsPartnersStateDict) {
  for (int ws : {2, 4, 6}) {
    dist::run_thread_world(ws, [&](dist::Communicator& comm) {
      TempDir dir;
      ReplicationStager stager(comm, options_in(dir.path()));
      const int p = (comm.rank() + ws / 2) % ws;
      EXPECT_EQ(stager.partner(), p);
      const Value got = stager.stage(rank_state_dict(comm.rank()));
      expect_rank_state_dict(got, p);
      expect_rank_state_dict(load_replica(stager.persisted_path()), p);
      EXPECT_EQ(stager.persisted_path().filename().string(),
                "rank_" + std::to_string(comm.rank()) + "_replica_partner_" + std::to_string(p) + ".replica");
    });
  }
}

TEST(ReplicationStager, SendsEachDistinctStorageOnce) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    TempDir dir;
    ReplicationStager stager(comm, options_in(dir.path()));
    (void)stager.stage(rank_state_dict(comm.rank()));
    // weight (16x8 float32) and its view share one storage; bias is 8 float64: 512 + 64 bytes.
    EXPECT_EQ(stager.last_stats().bytes_received, 512u + 64u);
    EXPECT_GT(stager.last_stats().bytes_sent, 512u + 64u);  // plus the preamble and manifest
    EXPECT_GT(stager.last_stats().replica_file_bytes, 512u + 64u);
  });
}

TEST(ReplicationStager, DTensorsKeepTheirSpecAndShardedTensorsMoveToTheReceiver) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    const int r = comm.rank();
    const int p = 1 - r;
    TempDir dir;
    auto make = [](int rank) {
      const DeviceMesh mesh = DeviceMesh::one_d(DeviceType::cpu, 2);
      const Tensor full = Tensor::arange(6 * 4, DType::float32).view({6, 4});
      ShardedTensorMetadata meta{
          {{{0, 0}, {3, 4}, 0, Device::cpu()}, {{3, 0}, {3, 4}, 1, Device::cpu()}}, {6, 4}, DType::float32};
      auto st =
          std::make_shared<ShardedTensor>(std::vector<LocalTensorShard>{{full.narrow(0, 3 * rank, 3).clone(),
                                                                         meta.shards[static_cast<std::size_t>(rank)]}},
                                          meta, rank);
      return Value::dict(
          {{"dt", Value(DTensor::distribute(full, mesh, {Placement::shard(0)}, rank))}, {"st", Value(st)}});
    };
    ReplicationStager stager(comm, options_in(dir.path()));
    const Value got = stager.stage(make(r));
    const Value sent = make(p);
    const DTensor& dt = *got["dt"].as_dtensor_node();
    EXPECT_EQ(dt.spec(), sent["dt"].as_dtensor_node()->spec());
    EXPECT_EQ(dt.rank(), p);
    EXPECT_TRUE(Tensor::equal(dt.local(), sent["dt"].as_dtensor_node()->local()));
    const ShardedTensor& st = *got["st"].as_sharded_tensor_node();
    EXPECT_EQ(st.rank(), r);
    ASSERT_EQ(st.local_shards().size(), 1u);
    EXPECT_EQ(st.local_shards()[0].metadata.placement_rank, r);
    EXPECT_EQ(st.local_shards()[0].metadata.offsets, (IntList{3 * p, 0}));
    EXPECT_EQ(st.metadata(), sent["st"].as_sharded_tensor_node()->metadata());
    EXPECT_TRUE(
        Tensor::equal(st.local_shards()[0].tensor, sent["st"].as_sharded_tensor_node()->local_shards()[0].tensor));
    // The file holds what stage() returned: the shard placed on this rank.
    const Value loaded = load_replica(stager.persisted_path());
    const ShardedTensor& lst = *loaded["st"].as_sharded_tensor_node();
    EXPECT_EQ(lst.rank(), r);
    EXPECT_EQ(lst.local_shards()[0].metadata, st.local_shards()[0].metadata);
    EXPECT_EQ(loaded["dt"].as_dtensor_node()->spec(), dt.spec());
  });
}

// The survivor of a partner gone after the first exchange: its next stage is a TimeoutError within
// 10 s, and the partner's first state dict stays its replica, the only file in its directory.
void expect_timeout_keeping_replica(ReplicationStager& stager, const TempDir& dir) {
  const auto start = Clock::now();
  EXPECT_THROW((void)stager.stage(rank_state_dict(1, 1)), TimeoutError);
  EXPECT_LT(Clock::now() - start, 10s);
  expect_rank_state_dict(load_replica(stager.persisted_path()), 0, 0);
  EXPECT_EQ(files_in(dir.path()).size(), 1u);
}

TEST(ReplicationStager, MissingPartnerIsATimeoutAndKeepsThePreviousReplica) {
  dist::run_thread_world(
      2,
      [&](dist::Communicator& comm) {
        TempDir dir;
        ReplicationStager stager(comm, options_in(dir.path(), 1500ms));
        (void)stager.stage(rank_state_dict(comm.rank(), 0));
        if (comm.rank() == 0) return;  // rank 0 never takes part again
        expect_timeout_keeping_replica(stager, dir);
      },
      30s);
}

TEST(ReplicationStager, PartnerDyingMidExchangeIsATimeoutAndKeepsThePreviousReplica) {
  // Rank 0 sends first: it dies after its preamble and manifest, before any storage byte.
  std::atomic<bool> died = false;
  dist::run_thread_world(
      2,
      [&](dist::Communicator& comm) {
        TempDir dir;
        stagekit::testing::DyingCommunicator dying(comm, kReplicaTag + 1, [&] {
          died = true;
          throw stagekit::testing::RankDied();
        });
        const bool victim = comm.rank() == 0;
        dist::Communicator& used = victim ? static_cast<dist::Communicator&>(dying) : comm;
        ReplicationStager stager(used, options_in(dir.path(), 1500ms));
        if (!victim) {
          (void)stager.stage(rank_state_dict(1, 0));  // the first exchange: rank 1 receives first
        }
        if (victim) {
          // First exchange through the real communicator's path would kill us too early: rebuild the
          // first replica with a clean stager, then die in the second.
          ReplicationStager clean(comm, options_in(dir.path(), 1500ms));
          (void)clean.stage(rank_state_dict(0, 0));
          EXPECT_THROW((void)stager.stage(rank_state_dict(0, 1)), stagekit::testing::RankDied);
          return;
        }
        expect_timeout_keeping_replica(stager, dir);
      },
      30s);
  EXPECT_TRUE(died);
}

TEST(ReplicationStager, APartnerThatCannotPackFailsBothSidesAtOnce) {
  for (int bad : {0, 1}) {
    dist::run_thread_world(
        2,
        [&](dist::Communicator& comm) {
          TempDir dir;
          ReplicationStager stager(comm, options_in(dir.path(), 20s));
          Value sd = rank_state_dict(comm.rank());
          if (comm.rank() == bad) sd.as_dict().set("lock", Value::opaque("threading.Lock"));
          const auto start = Clock::now();
          if (comm.rank() == bad) {
            try {
              (void)stager.stage(sd);
              ADD_FAILURE() << "an opaque leaf was replicated";
            } catch (const Unsupported& e) {
              EXPECT_NE(std::string(e.what()).find("lock"), std::string::npos) << e.what();
            }
          } else {
            try {
              (void)stager.stage(sd);
              ADD_FAILURE() << "stage() returned although the partner sent no state dict";
            } catch (const CommunicationError& e) {
              EXPECT_NE(std::string(e.what()).find("sent no state dict"), std::string::npos) << e.what();
            }
          }
          EXPECT_LT(Clock::now() - start, 10s) << "the failure was not reported at once";
          EXPECT_TRUE(files_in(dir.path()).empty());
        },
        30s);
  }
}

TEST(ReplicationStager, RepeatedStagesReplaceTheReplica) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    TempDir dir;
    ReplicationStager stager(comm, options_in(dir.path()));
    const int p = stager.partner();
    std::vector<Value> results;
    for (std::uint64_t round = 0; round < 3; ++round) {
      results.push_back(stager.stage(rank_state_dict(comm.rank(), round)));
      expect_rank_state_dict(load_replica(stager.persisted_path()), p, round);
      EXPECT_EQ(files_in(dir.path()).size(), 1u);
    }
    for (std::uint64_t round = 0; round < 3; ++round) expect_rank_state_dict(results[round], p, round);
  });
}

TEST(ReplicationStager, DefaultDirectoryIsCreatedInTheTemporaryDirectory) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    ReplicationOptions o;
    o.timeout = 20s;
    ReplicationStager stager(comm, o);
    const fs::path dir = stager.storage_dir();
    EXPECT_TRUE(fs::is_directory(dir));
    EXPECT_EQ(dir.string().rfind(fs::temp_directory_path().string(), 0), 0u) << dir;
    EXPECT_EQ(dir.filename().string().rfind("replication_stager_", 0), 0u) << dir;
    (void)stager.stage(rank_state_dict(comm.rank()));
    stager.close();
    EXPECT_TRUE(fs::is_regular_file(stager.persisted_path())) << "close() must keep the replica";
    fs::remove_all(dir);
  });
}

TEST(ReplicationStager, CustomDirectoryIsCreatedWithItsParentsAndUsedVerbatim) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    TempDir scratch;
    const fs::path custom = scratch.path() / "a" / "b" / "replicas";
    ReplicationStager stager(comm, options_in(custom));
    EXPECT_EQ(stager.storage_dir(), custom);
    EXPECT_TRUE(fs::is_directory(custom));
  });
}

TEST(ReplicationStager, AStorageDirectoryThatIsAFileIsAnIoError) {
  dist::run_thread_world(2, [&](dist::Communicator& comm) {
    TempDir scratch;
    const fs::path file = scratch.path() / "not_a_directory";
    {
      std::FILE* f = std::fopen(file.c_str(), "w");
      std::fclose(f);
    }
    EXPECT_THROW(ReplicationStager(comm, options_in(file)), IoError);
  });
}

}  // namespace
}  // namespace stagekit::replicate
