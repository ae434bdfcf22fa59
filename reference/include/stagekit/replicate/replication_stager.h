// stagekit/replicate/replication_stager.h — ReplicationStager: keeps a copy of every rank's state
// dict on a partner rank, in memory and on that partner's disk (PyTorch's _ReplicationStager, with
// the corrections of spec C.3).
//
// stage(sd) sends this rank's state dict to its partner, receives the partner's, persists the
// received replica to `persisted_path()` and returns it (a new tree in host memory). Partners are
// paired in the communicator's own rank space: partner(r) = (r + size/2) % size. The heads cross
// first (the lower rank's first), then both payloads at once, in place (replica_transport.h). The
// partner's storages are received into buffers of the stager's pool: once the caller drops a
// replica, its memory is reused, still faulted in, for the next one.
//
// Invariants:
//   * the world size of the communicator must be even and at least 2: anything else is refused at
//     construction with InvalidArgument (upstream hangs);
//   * every exchange is bounded by options.timeout: a partner that is missing, dead or stuck gives a
//     TimeoutError on this rank (naming the partner), never a hang; no replica is written then;
//   * storage sharing survives the exchange: each distinct storage is sent once and views are
//     rebuilt over it; non-tensor leaves, objects, attributes, DTensors (spec and rank kept) and
//     ShardedTensors (local shards placed on the receiving rank, as upstream) round-trip;
//   * persistence is atomic (replica_file.h): after a failed stage the previous replica is still the
//     valid file at persisted_path(), and no temporary file is left;
//   * the storage directory is created at construction (parents too; an existing one is accepted).
//     Without one, a new directory "replication_stager_XXXXXX" is made in the system temporary
//     directory. close() keeps the directory and the replica (a restarted process loads it with
//     load_replica()), as upstream does, and frees the pool's waiting buffers.
// Calls on one stager are serialised; stage() is collective over the pair, not the world.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>

#include "stagekit/core/value.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::replicate {

struct ReplicationOptions {
  std::chrono::milliseconds timeout = std::chrono::minutes(30);
  std::optional<std::filesystem::path> storage_dir;  // nullopt: a new directory in the temp dir
  bool persist = true;                               // false: exchange only (benchmarks)
};

struct ReplicationStats {
  std::uint64_t bytes_sent = 0;
  std::uint64_t bytes_received = 0;
  std::uint64_t replica_file_bytes = 0;
  double exchange_seconds = 0.0;
  double persist_seconds = 0.0;
};

// The partner of `rank` in a world of `world_size` (even, >= 2; InvalidArgument otherwise).
[[nodiscard]] int replication_partner(int rank, int world_size);

class ReplicationStager {
 public:
  // `comm` must outlive the stager.
  explicit ReplicationStager(dist::Communicator& comm, ReplicationOptions options = {});
  ~ReplicationStager();
  ReplicationStager(const ReplicationStager&) = delete;
  ReplicationStager& operator=(const ReplicationStager&) = delete;

  // Exchanges `state_dict` with the partner and returns the partner's, persisted (see above).
  Value stage(const Value& state_dict);
  void close();

  [[nodiscard]] int rank() const noexcept;
  [[nodiscard]] int partner() const noexcept;
  [[nodiscard]] const std::filesystem::path& storage_dir() const noexcept;
  // <storage_dir>/rank_<r>_replica_partner_<p>.replica
  [[nodiscard]] std::filesystem::path persisted_path() const;
  [[nodiscard]] ReplicationStats last_stats() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace stagekit::replicate
