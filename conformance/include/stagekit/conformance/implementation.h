// stagekit/conformance/implementation.h — the adapter interface: what an implementation under test
// provides to the conformance suite.
//
// An Implementation declares its Capabilities and makes stagers. The suite reaches every
// implementation (the reference included) only through this interface and the value model of
// stagekit/core, so a case never special-cases one implementation. A case that needs a capability
// the implementation does not declare is reported not_supported with the missing capability as the
// reason — never pass. Errors cross this interface as stagekit::Error exceptions (stagekit/core/error.h).
//
// Invariants an implementation must keep:
//   * make_stager() returns an independent stager (no buffers shared with other stagers);
//   * StagerUnderTest::stage() returns only after every staged byte is in place;
//   * PendingResult::wait() returns the staged tree only once every copy is complete; destroying an
//     unwaited PendingResult waits for its copies (and drops any error);
//   * copies from CUDA sources are ordered after the work the caller had queued on its current
//     stream (cuda::current_stream(), a thread's own; through the torch route,
//     torch.cuda.current_stream()) when it called stage(), stage_async() or an AsyncStager's stage();
//   * make_replication_stager() and load_replica() are only called with Capabilities::replication;
//   * make_default_stager(), make_blocking_async_stager(), async_save() and load_checkpoint() are only
//     called with Capabilities::async_staging;
//   * cache_stats() is optional (nullopt when not declared in Capabilities::cache_stats).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "stagekit/core/value.h"
#include "stagekit/dist/communicator.h"
#include "stagekit/dist/state_dict_paths.h"

namespace stagekit::conformance {

// Thrown by an implementation that reaches another framework (the torch route) when a case's input
// cannot be represented there at all (a dtype that framework lacks): the case is not_supported with
// this message as the reason. Not a stagekit::Error, so that no case mistakes it for the stager's
// own refusal of bad input.
class InputNotRepresentable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Capabilities {
  bool pin_memory = false;    // staged buffers can be page-locked
  bool share_memory = false;  // staged buffers can live in shared memory another process can map
  bool cuda_sources = false;  // tensors on CUDA devices can be staged
  bool non_blocking = false;  // stage_async() is implemented
  bool cache_stats = false;   // cache_stats() reports the buffer cache
  bool dtensor = false;
  bool sharded_tensor = false;
  bool replication = false;
  bool state_dict_utilities = false;
  bool async_staging = false;  // DefaultStager, BlockingAsyncStager and async_save (see below)
};

// Construction options of a stager, as in PyTorch's StateDictStager.
struct StagerConfig {
  bool pin_memory = false;
  bool share_memory = false;
  std::size_t pin_memory_min_bytes = 5;
};

// What an implementation says about its buffer cache (checked against independent probes).
struct CacheStats {
  std::size_t cached_storages = 0;
  std::uint64_t cached_bytes = 0;
  std::uint64_t pinned_bytes = 0;
  std::uint64_t shared_bytes = 0;
};

class PendingResult {
 public:
  virtual ~PendingResult() = default;
  virtual Value wait() = 0;
};

// Stagers made by one implementation are independent: each may stage on a thread of its own while
// another stages on another (as separate PyTorch StateDictStagers can); one stager is used by one
// thread at a time.
class StagerUnderTest {
 public:
  virtual ~StagerUnderTest() = default;
  virtual Value stage(const Value& state_dict) = 0;
  // Non-blocking staging; only called when Capabilities::non_blocking is declared.
  virtual std::unique_ptr<PendingResult> stage_async(const Value& state_dict);
  // Releases every cached buffer; the stager must remain usable afterwards. A non-blocking stage still
  // in flight (its handle not waited on) is waited for first: its handle still hands out its result.
  virtual void close() = 0;
  virtual std::optional<CacheStats> cache_stats() const { return std::nullopt; }
};

// One stage() split in three, for a stager whose stage() first converts the state dict for another
// framework (the torch route): prepare() converts, run() is the stager's own call (with the device
// synchronisation it needs before its result may be read), result() converts back. Benchmarks time
// run() alone. A StagerUnderTest offers the split by also deriving from SplitStage (found with
// dynamic_cast); stage() stays the three in one.
class PreparedStage {
 public:
  virtual ~PreparedStage() = default;
  virtual void run() = 0;
  [[nodiscard]] virtual Value result() = 0;  // after run()
};

class SplitStage {
 public:
  virtual ~SplitStage() = default;
  [[nodiscard]] virtual std::unique_ptr<PreparedStage> prepare(const Value& state_dict) = 0;
};

// The distributed state-dict utilities (PyTorch's _state_dict_utils, spec B.6), reached when
// Capabilities::state_dict_utilities is declared. Collective calls get the world communicator of
// the case (a thread world, or the MPI world under mpirun); every rank calls them in the same order.
struct UtilityGatherOptions {
  bool cpu_offload = false;
  std::vector<int> ranks_only;
  bool type_check = true;
  // Upstream's `device`: where a ShardedTensor is gathered before its full tensor goes to the device
  // of the rank's first local shard (CPU without one); DTensors ignore it. nullopt: not given.
  std::optional<Device> device;
};

class StateDictUtilitiesUnderTest {
 public:
  virtual ~StateDictUtilitiesUnderTest() = default;
  virtual Value gather_state_dict(const Value& state_dict, dist::Communicator& world,
                                  const UtilityGatherOptions& options) = 0;
  virtual Value offload_state_dict_to_cpu(const Value& state_dict, int rank, const std::vector<int>& ranks_only,
                                          bool type_check) = 0;
  virtual Value create_cpu_state_dict(const Value& state_dict, bool pin_memory, bool share_memory) = 0;
  // non_blocking: copies from CUDA sources may still be running when this returns; they have
  // completed once the caller synchronises the source device (cudaDeviceSynchronize(), as upstream's
  // callers use torch.cuda.synchronize()), which the cases do before reading the destination or
  // changing the source. Copies from CPU sources have completed on return.
  virtual Value copy_state_dict(const Value& source, const Value& destination, bool non_blocking, bool type_check) = 0;
  virtual bool check_state_dict_similarity(const Value& state_dict, const Value& other) = 0;
  virtual void distribute_tensors(Value& local_state_dict, const std::vector<std::string>& keys) = 0;
  virtual void distribute_state_dict(const Value& full_state_dict, Value& local_state_dict, Device device) = 0;
  virtual void broadcast_state_dict(const Value& full_state_dict, Value& local_state_dict, dist::Communicator& world,
                                    bool strict, bool cpu_offload, Device device) = 0;
  // The path helpers (spec B.6.13; types and semantics in stagekit/dist/state_dict_paths.h). The
  // defaults raise Unsupported, which makes the path-helper cases not_supported.
  virtual std::vector<std::pair<dist::ObjectPath, Value>> traverse_state_dict(const Value& state_dict);
  virtual dist::FlatStateDict flatten_state_dict(const Value& state_dict);
  virtual void set_element(Value& root, const dist::ObjectPath& path, const Value& value);
  virtual Value unflatten_state_dict(const Value& flat, const dist::FlattenMapping& mapping);
};

// Construction options of a replication stager, as in PyTorch's _ReplicationStager.
struct ReplicationConfig {
  std::chrono::milliseconds timeout = std::chrono::seconds(30);
  // nullopt: the implementation creates a new one in the system temp dir, named "replication_stager_"
  // plus a unique suffix (upstream's prefix, spec B.3.5).
  std::optional<std::string> storage_dir;
};

// A replication stager on one rank (spec B.3.5), reached when Capabilities::replication is declared.
// Made on every rank of a world; stage() exchanges with the partner (r + size/2) % size of the
// communicator it was made with and returns the partner's state dict, persisted on this rank.
class ReplicationStagerUnderTest {
 public:
  virtual ~ReplicationStagerUnderTest() = default;
  virtual Value stage(const Value& state_dict) = 0;
  // The storage directory in use (as given, or the one created).
  [[nodiscard]] virtual std::string storage_dir() const = 0;
  // The file holding the replica this rank keeps for its partner p: as upstream names it (spec B.3.5),
  // "<storage_dir>/rank_<r>_replica_partner_<p>" plus the format's extension (upstream's is .pt).
  [[nodiscard]] virtual std::string persisted_path() const = 0;
  virtual void close() = 0;
};

// ---- the asynchronous staging surface of checkpointing (spec B.3, B.5), Capabilities::async_staging ----

// PyTorch's StagingOptions, in its order and with its defaults.
struct StagingOptions {
  bool use_pinned_memory = true;
  bool use_shared_memory = true;
  bool use_async_staging = true;
  bool use_non_blocking_copy = true;
};

// What an asynchronous stager's stage() returns: the staged dict (a synchronous stager) or a future
// of it (an asynchronous one, whose error surfaces from the future).
struct StageReturn {
  std::optional<Value> state_dict;
  std::shared_future<Value> future;
  [[nodiscard]] bool is_future() const noexcept { return future.valid(); }
};

// PyTorch's AsyncStager protocol: a DefaultStager or a BlockingAsyncStager.
class AsyncStagerUnderTest {
 public:
  virtual ~AsyncStagerUnderTest() = default;
  virtual StageReturn stage(const Value& state_dict) = 0;
  // Waits for the last asynchronous stage and rethrows its error; a no-op when there is none.
  virtual void synchronize_staging() = 0;
  [[nodiscard]] virtual bool should_synchronize_after_execute() const = 0;
  // Waits for every stage in flight, then releases the stager's buffers; stage() after close() raises
  // InvalidArgument. close() is idempotent (a second call returns); the destructor closes.
  virtual void close() = 0;
  virtual std::optional<CacheStats> cache_stats() const { return std::nullopt; }
};

// With cache_staged_state_dict, a state dict of another structure than the cached one raises
// InvalidArgument naming the path at which it differs.
struct BlockingAsyncStagerConfig {
  bool cache_staged_state_dict = false;
  bool type_check = false;
};

// What async_save returns: staging_completed is ready once the staged dict is complete; upload
// yields a non-empty description of the checkpoint written (PyTorch's metadata) or rethrows.
// Dropping the response unread waits for the upload: the checkpoint is complete once it is gone.
// An error of staging or writing is raised by async_save() itself or rethrown by staging_completed or
// upload as a stagekit::Error (an I/O error for a write that fails), never returned as metadata.
struct AsyncSaveReturn {
  std::shared_future<void> staging_completed;
  std::shared_future<std::string> upload;
};

class Implementation {
 public:
  virtual ~Implementation() = default;
  [[nodiscard]] virtual std::string name() const = 0;
  [[nodiscard]] virtual std::string version() const = 0;
  [[nodiscard]] virtual Capabilities capabilities() const = 0;
  [[nodiscard]] virtual std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) = 0;
  // Only called when Capabilities::state_dict_utilities is declared.
  [[nodiscard]] virtual std::unique_ptr<StateDictUtilitiesUnderTest> make_utilities() { return nullptr; }
  // Only called when Capabilities::replication is declared. `comm` outlives the stager. A world the
  // implementation cannot pair (odd size, a single rank) is refused here with a stagekit::Error.
  [[nodiscard]] virtual std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager(
      dist::Communicator& comm, const ReplicationConfig& config);
  // Reads a replica file written by this implementation's replication stager, verifying it: a
  // damaged file must raise a stagekit::Error, never return a wrong tree. Only called when
  // Capabilities::replication is declared.
  [[nodiscard]] virtual Value load_replica(const std::string& path);

  // Only called when Capabilities::async_staging is declared. Construction errors (a non-blocking
  // copy without an accelerator) are raised here as a stagekit::Error.
  [[nodiscard]] virtual std::unique_ptr<AsyncStagerUnderTest> make_default_stager(const StagingOptions& options);
  [[nodiscard]] virtual std::unique_ptr<AsyncStagerUnderTest> make_blocking_async_stager(
      const BlockingAsyncStagerConfig& config);
  // Saves `state_dict` as a checkpoint in `directory` (single process, no_dist), staging it with
  // `stager` (one this implementation made) or, when null, with a stager of its own that it closes.
  [[nodiscard]] virtual AsyncSaveReturn async_save(const Value& state_dict, const std::string& directory,
                                                   AsyncStagerUnderTest* stager);
  // Reads back a checkpoint async_save wrote. A missing or damaged checkpoint (no such directory, no
  // file in it, a file emptied or cut short) raises a stagekit::Error, never returns a tree.
  [[nodiscard]] virtual Value load_checkpoint(const std::string& directory);
};

using ImplementationFactory = std::function<std::unique_ptr<Implementation>()>;

}  // namespace stagekit::conformance
