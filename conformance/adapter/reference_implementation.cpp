#include "stagekit/adapter/reference_implementation.h"

#include "reference_async_staging.h"

#include "stagekit/config.h"
#include "stagekit/dist/state_dict_paths.h"
#include "stagekit/dist/state_dict_utils.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/replicate/replication_stager.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit::conformance {
namespace {

class ReferencePending final : public PendingResult {
 public:
  explicit ReferencePending(PendingStage pending) : pending_(std::move(pending)) {}
  Value wait() override { return pending_.wait(); }

 private:
  PendingStage pending_;
};

class ReferenceStager final : public StagerUnderTest {
 public:
  explicit ReferenceStager(const StagerConfig& c)
      : stager_(StagerOptions{c.pin_memory, c.share_memory, c.pin_memory_min_bytes}) {}
  Value stage(const Value& sd) override { return stager_.stage(sd); }
  std::unique_ptr<PendingResult> stage_async(const Value& sd) override {
    return std::make_unique<ReferencePending>(stager_.stage_async(sd));
  }
  void close() override { stager_.close(); }
  std::optional<CacheStats> cache_stats() const override {
    const StagerStats s = stager_.stats();
    return CacheStats{s.cached_storages, s.cached_bytes, s.pinned_bytes, s.shared_bytes};
  }

 private:
  StateDictStager stager_;
};

class ReferenceUtilities final : public StateDictUtilitiesUnderTest {
 public:
  Value gather_state_dict(const Value& sd, dist::Communicator& world, const UtilityGatherOptions& o) override {
    // Gathered tensors take pre-faulted memory from this object's pool: gathering the same state
    // dict again (checkpoint after checkpoint) costs no page faults once the last result is freed.
    return dist::gather_state_dict(
        sd, world, dist::GatherOptions{o.cpu_offload, o.ranks_only, o.type_check, &output_pool_, o.device});
  }
  Value offload_state_dict_to_cpu(const Value& sd, int rank, const std::vector<int>& ranks_only,
                                  bool type_check) override {
    return dist::offload_state_dict_to_cpu(sd, rank, ranks_only, type_check);
  }
  Value create_cpu_state_dict(const Value& sd, bool pin_memory, bool share_memory) override {
    return dist::create_cpu_state_dict(sd, pin_memory, share_memory);
  }
  Value copy_state_dict(const Value& source, const Value& destination, bool non_blocking, bool type_check) override {
    return dist::copy_state_dict(source, destination, non_blocking, type_check);
  }
  bool check_state_dict_similarity(const Value& sd, const Value& other) override {
    return dist::check_state_dict_similarity(sd, other);
  }
  void distribute_tensors(Value& local_sd, const std::vector<std::string>& keys) override {
    dist::distribute_tensors(local_sd, keys);
  }
  void distribute_state_dict(const Value& full_sd, Value& local_sd, Device device) override {
    dist::distribute_state_dict(full_sd, local_sd, device);
  }
  void broadcast_state_dict(const Value& full_sd, Value& local_sd, dist::Communicator& world, bool strict,
                            bool cpu_offload, Device device) override {
    dist::broadcast_state_dict(full_sd, local_sd, world,
                               dist::BroadcastOptions{strict, cpu_offload, device, &output_pool_});
  }
  std::vector<std::pair<dist::ObjectPath, Value>> traverse_state_dict(const Value& sd) override {
    std::vector<std::pair<dist::ObjectPath, Value>> leaves;
    dist::traverse_state_dict(
        sd, [&](const dist::ObjectPath& path, const Value& leaf) { leaves.emplace_back(path, leaf); });
    return leaves;
  }
  dist::FlatStateDict flatten_state_dict(const Value& sd) override { return dist::flatten_state_dict(sd); }
  void set_element(Value& root, const dist::ObjectPath& path, const Value& value) override {
    dist::set_element(root, path, value);
  }
  Value unflatten_state_dict(const Value& flat, const dist::FlattenMapping& mapping) override {
    return dist::unflatten_state_dict(flat, mapping);
  }

 private:
  HostBufferPool output_pool_;
};

class ReferenceReplicationStager final : public ReplicationStagerUnderTest {
 public:
  ReferenceReplicationStager(dist::Communicator& comm, const ReplicationConfig& c)
      : stager_(comm, replicate::ReplicationOptions{
                          c.timeout,
                          c.storage_dir ? std::optional<std::filesystem::path>(*c.storage_dir) : std::nullopt, true}) {}
  Value stage(const Value& sd) override { return stager_.stage(sd); }
  std::string storage_dir() const override { return stager_.storage_dir().string(); }
  std::string persisted_path() const override { return stager_.persisted_path().string(); }
  void close() override { stager_.close(); }

 private:
  replicate::ReplicationStager stager_;
};

class ReferenceImplementation final : public Implementation {
 public:
  std::string name() const override { return std::string(kReferenceImplementationName); }
  std::string version() const override { return STAGEKIT_VERSION; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.pin_memory = true;
    c.share_memory = true;
    c.cuda_sources = STAGEKIT_HAVE_CUDA != 0;
    c.non_blocking = true;
    c.cache_stats = true;
    c.dtensor = true;
    c.sharded_tensor = true;
    c.state_dict_utilities = true;
    c.replication = true;
    c.async_staging = true;
    return c;
  }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) override {
    return std::make_unique<ReferenceStager>(config);
  }
  std::unique_ptr<StateDictUtilitiesUnderTest> make_utilities() override {
    return std::make_unique<ReferenceUtilities>();
  }
  std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager(dist::Communicator& comm,
                                                                      const ReplicationConfig& config) override {
    return std::make_unique<ReferenceReplicationStager>(comm, config);
  }
  Value load_replica(const std::string& path) override { return replicate::load_replica(path); }
  std::unique_ptr<AsyncStagerUnderTest> make_default_stager(const StagingOptions& options) override {
    return make_reference_default_stager(options);
  }
  std::unique_ptr<AsyncStagerUnderTest> make_blocking_async_stager(const BlockingAsyncStagerConfig& config) override {
    return make_reference_blocking_async_stager(config);
  }
  AsyncSaveReturn async_save(const Value& sd, const std::string& directory, AsyncStagerUnderTest* stager) override {
    return reference_async_save(sd, directory, stager);
  }
  Value load_checkpoint(const std::string& directory) override { return reference_load_checkpoint(directory); }
};

}  // namespace

std::unique_ptr<Implementation> make_reference_implementation() { return std::make_unique<ReferenceImplementation>(); }

}  // namespace stagekit::conformance
