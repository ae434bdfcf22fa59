// Building blocks of the replication cases (spec A.3 and C.3): the per-rank inputs of upstream's
// TestReplicationStager, strict verification of a received replica against the partner's
// regenerated state dict, scratch directories, and the checks on a storage directory's files.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "dist_fixtures.h"

namespace stagekit::conformance {

// Replication cases stage CPU state dicts, as upstream's do.
inline constexpr std::array<Source, 1> kCpuSource = {Source::cpu};

// Registers `replication.<feature>.cpu.default.ws<N>` for each world size (`replication.<feature>.cpu.default`
// for a world size of 1): CPU sources, needing the replication capability plus `extra`.
void add_replication_cases(CaseRegistry& registry, const CaseName& name, std::string_view description,
                           std::string_view source, Profile profile, std::span<const int> world_sizes,
                           const WorldBody& body, Requirements extra = {});

// A stager configuration writing into `dir` with `timeout`.
[[nodiscard]] ReplicationConfig replication_config(const std::filesystem::path& dir,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The partner rule every replication stager follows: (rank + world/2) % world.
[[nodiscard]] int partner_of(int rank, int world_size);

// A.3.1: "layer1.weight" 64x128, "layer1.bias" 64, "layer2.weight" 32x64, "layer2.bias" 32,
// "nested" {"param" 16x16, "buffer" 8} (float32, seeded by rank and `round`) and "scalar" = rank.
[[nodiscard]] Value simple_state_dict(int rank, std::uint64_t round = 0);
// A.3.3: "sharded_param" (128x16 arange, Shard(0) over the world), "replicated_param" (8x8 of
// 12800, Replicate), "rank_scalar" = rank.
[[nodiscard]] Value dtensor_state_dict(int rank, int world_size);
// A.3.5: "sharded_tensor" (64x8 global, rows [r*64/ws, (r+1)*64/ws) of values 8*row + col, placed on
// "rank:<r>/cpu") and "rank_scalar" = rank.
[[nodiscard]] Value sharded_tensor_state_dict(int rank, int world_size);
// Views, offsets, strides and storage sharing between leaves, attributes (plain values, a tensor and
// a dict holding a list) (strict).
[[nodiscard]] Value shared_storage_state_dict(int rank);
// Every non-tensor leaf kind, objects (frozen too), a node reached twice, empty containers (dicts,
// lists and tuples, nested too), empty and 0-dim tensors and a tensor of every dtype (strict).
[[nodiscard]] Value mixed_leaves_state_dict(int rank);
// `bytes` of float32 data plus a rank scalar, for the file-size-limit case.
[[nodiscard]] Value sized_state_dict(int rank, std::size_t bytes, std::uint64_t round);

// The strict verifier of a received replica: exact structure and key sets (upstream's helper
// accepts missing keys), values bit for bit, sizes, strides, offsets, whole storages and storage
// sharing in both directions, all on the CPU. Failures name the rank. Returns true when clean.
bool check_replica(CaseContext& ctx, int rank, std::string_view what, const Value& received, const Value& expected);

// Makes the stager on this rank, recording a failure (and returning nullptr) if it throws.
[[nodiscard]] std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager_or_fail(
    CaseContext& ctx, int rank, dist::Communicator& comm, const ReplicationConfig& config);
// Stages, recording a failure (and returning nullopt) if it throws.
[[nodiscard]] std::optional<Value> replicate_or_fail(CaseContext& ctx, int rank, ReplicationStagerUnderTest& stager,
                                                     const Value& state_dict, std::string_view what);
// Makes a stager (writing into a scratch directory), stages `state_dict` once and closes it: the
// replica, or nullopt after a recorded failure.
[[nodiscard]] std::optional<Value> replicate_once(CaseContext& ctx, int rank, dist::Communicator& comm,
                                                  const Value& state_dict);
// Loads a replica file with the implementation's loader, recording a failure if it throws.
[[nodiscard]] std::optional<Value> load_or_fail(CaseContext& ctx, int rank, const std::string& path);
// Loads the replica `stager` persisted and checks it strictly against `expected` (`what` names it).
void check_persisted_replica(CaseContext& ctx, int rank, const ReplicationStagerUnderTest& stager,
                             const Value& expected, std::string_view what);

// A new empty directory under the system temporary directory, removed with everything in it when
// the object dies.
class ScratchDir {
 public:
  explicit ScratchDir(std::string_view prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
};

// The regular files directly in `dir`, by name.
[[nodiscard]] std::vector<std::string> files_in(const std::filesystem::path& dir);
// Checks that `dir` holds exactly one file, the replica at `replica_path` (no temporary file left).
bool check_only_replica_left(CaseContext& ctx, int rank, const std::filesystem::path& dir,
                             const std::filesystem::path& replica_path, std::string_view when);

}  // namespace stagekit::conformance
