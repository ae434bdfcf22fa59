// ReplicationStager: pairs ranks in the communicator's own rank space, exchanges packed state dicts
// (the heads, then both payloads at once) under the stager's timeout, and persists the received
// replica atomically.
#include "stagekit/replicate/replication_stager.h"

#include <fmt/format.h>
#include <fmt/std.h>
#include <stdlib.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

#include "stagekit/core/error.h"
#include "stagekit/core/host_buffer_pool.h"
#include "stagekit/replicate/packed_message.h"
#include "stagekit/replicate/packed_state_dict.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/replicate/replica_transport.h"

namespace stagekit::replicate {
namespace fs = std::filesystem;
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Applies the stager's timeout to the communicator for the duration of one exchange.
class TimeoutScope {
 public:
  TimeoutScope(dist::Communicator& comm, std::chrono::milliseconds timeout) : comm_(comm), saved_(comm.timeout()) {
    comm_.set_timeout(timeout);
  }
  ~TimeoutScope() { comm_.set_timeout(saved_); }
  TimeoutScope(const TimeoutScope&) = delete;
  TimeoutScope& operator=(const TimeoutScope&) = delete;

 private:
  dist::Communicator& comm_;
  std::chrono::milliseconds saved_;
};

fs::path make_storage_dir(const std::optional<fs::path>& requested) {
  if (requested) {
    std::error_code ec;
    fs::create_directories(*requested, ec);
    if (ec || !fs::is_directory(*requested)) {
      throw IoError(fmt::format("cannot create the replication storage directory {}: {}", *requested,
                                ec ? ec.message() : std::string("it exists and is not a directory")));
    }
    return *requested;
  }
  std::error_code ec;
  const fs::path temp = fs::temp_directory_path(ec);
  if (ec) throw IoError(fmt::format("no system temporary directory for replication: {}", ec.message()));
  std::string templ = (temp / "replication_stager_XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw IoError(fmt::format("cannot create a replication storage directory {}: {}", templ, std::strerror(errno)));
  }
  return fs::path(templ);
}

}  // namespace

int replication_partner(int rank, int world_size) {
  if (world_size < 2 || world_size % 2 != 0) {
    throw InvalidArgument(fmt::format(
        "replication pairs rank r with (r + size/2) % size, which needs an even world size of at least 2; this "
        "world has {} rank(s){}",
        world_size,
        world_size == 1 ? " (the rank would be its own partner)"
                        : fmt::format(" (rank 0 would send to rank {}, which sends to rank {})", world_size / 2,
                                      (world_size / 2 + world_size / 2) % world_size)));
  }
  check_argument(rank >= 0 && rank < world_size, fmt::format("rank {} is outside a world of {}", rank, world_size));
  return (rank + world_size / 2) % world_size;
}

struct ReplicationStager::State {
  State(dist::Communicator& c, ReplicationOptions o, int r, int p, fs::path dir)
      : comm(c), options(std::move(o)), rank(r), partner(p), storage_dir(std::move(dir)) {}
  dist::Communicator& comm;
  ReplicationOptions options;
  int rank;
  int partner;
  fs::path storage_dir;
  mutable std::mutex mutex;
  ReplicationStats stats;
  HostBufferPool receive_pool;  // the partner's storages, reused once the replicas holding them die
};

ReplicationStager::ReplicationStager(dist::Communicator& comm, ReplicationOptions options) {
  const int rank = comm.rank();
  const int partner = replication_partner(rank, comm.size());
  if (comm.backend() == "nccl") {
    throw Unsupported("replication moves host memory: use a thread-world or MPI communicator, not NCCL");
  }
  check_argument(options.timeout.count() > 0, "the replication timeout must be positive");
  fs::path dir = make_storage_dir(options.storage_dir);
  state_ = std::make_unique<State>(comm, std::move(options), rank, partner, std::move(dir));
}

ReplicationStager::~ReplicationStager() = default;

Value ReplicationStager::stage(const Value& state_dict) {
  State& s = *state_;
  std::lock_guard lock(s.mutex);
  ReplicationStats stats;

  // Pack first: a state dict that cannot be packed is reported to the partner instead of data.
  PackedStateDict packed;
  std::exception_ptr pack_error;
  std::string pack_message;
  try {
    packed = pack_state_dict(state_dict, PackOptions{.refuse_parameters = true});
  } catch (const std::exception& e) {
    pack_error = std::current_exception();
    pack_message = e.what();
  }

  const auto exchange_start = Clock::now();
  ReceivedStateDict received;
  {
    TimeoutScope timeout(s.comm, s.options.timeout);
    // Both heads first: after an error head on either side no payload moves, and both ranks know why.
    const std::vector<std::byte> mine = pack_error ? error_message_head(pack_message) : message_head(packed);
    const std::vector<std::byte> theirs = exchange_heads(s.comm, mine, s.partner);
    if (pack_error) std::rethrow_exception(pack_error);
    const MessageHead checked = read_message_head(theirs, "replica", s.partner);
    received = exchange_storages(s.comm, packed, checked, s.partner, s.receive_pool);
    stats.bytes_sent = mine.size() + packed.payload_bytes();
  }
  stats.exchange_seconds = seconds_since(exchange_start);
  for (const Storage& st : received.storages) stats.bytes_received += st.nbytes();

  UnpackOptions unpack;
  unpack.shard_placement_rank = s.rank;
  Value replica = unpack_state_dict(received.manifest, received.storages, unpack);

  if (s.options.persist) {
    const auto persist_start = Clock::now();
    // The file holds exactly what stage() returns (ShardedTensors already placed on this rank); the
    // storages are the received ones, so re-packing walks the tree but copies no tensor data.
    const PackedStateDict to_write = pack_state_dict(replica);
    try {
      stats.replica_file_bytes = write_replica(persisted_path(), to_write, {s.partner, s.rank, true});
    } catch (const Error& e) {
      throw IoError(
          fmt::format("failed to persist the state dict of rank {} on rank {}: {}", s.partner, s.rank, e.what()));
    }
    stats.persist_seconds = seconds_since(persist_start);
  }
  s.stats = stats;
  return replica;
}

void ReplicationStager::close() {
  // The replica and the directory stay (a restarted process loads the replica); the buffers waiting
  // for reuse are freed (replicas still held keep theirs).
  std::lock_guard lock(state_->mutex);
  state_->receive_pool.close();
}

int ReplicationStager::rank() const noexcept { return state_->rank; }
int ReplicationStager::partner() const noexcept { return state_->partner; }
const fs::path& ReplicationStager::storage_dir() const noexcept { return state_->storage_dir; }

fs::path ReplicationStager::persisted_path() const {
  return state_->storage_dir / fmt::format("rank_{}_replica_partner_{}.replica", state_->rank, state_->partner);
}

ReplicationStats ReplicationStager::last_stats() const {
  std::lock_guard lock(state_->mutex);
  return state_->stats;
}

}  // namespace stagekit::replicate
