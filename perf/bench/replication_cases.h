// The per-rank work of the replication benchmarks (replication_bench.cpp, perf/METRICS.md
// "Replication benchmarks"). Every rank pairs with partner (r + N/2) % N, as ReplicationStager does;
// a world of odd size (or of one rank) cannot pair, and every factory then throws Unsupported.
// Files go to replica_rank_dir(rank) (perf/driver/replica_dir.h).
//   mpi_sendrecv_limit     exchange S bytes with the partner by raw MPI_Isend/MPI_Irecv, both
//                          directions at once (MPI world only: Unsupported elsewhere)
//   memcpy_exchange_limit  copy the partner's S bytes into a touched buffer (thread world only)
//   seq_write_limit   write S bytes to a new file in 8 MiB writes, then fsync
//   exchange          the reference's ReplicationStager::stage() without persistence of an S-byte
//                     state dict (reference only: not_supported for another implementation)
//   persist           the reference's replicate::write_replica(sync) of the S-byte state dict,
//                     packed beforehand (reference only)
//   stage             the implementation's replication stager (make_replication_stager(): exchange,
//                     then persist), verified with its load_replica(); not_supported without the
//                     replication capability
// Each verifies its last result exactly (RankCase::verify). limit/seq_write writes from one 8 MiB
// chunk of a 256-byte-periodic pattern.
#pragma once

#include <cstddef>
#include <memory>

#include "../driver/dist_world.h"

namespace stagekit::perf::replication {

[[nodiscard]] std::unique_ptr<RankCase> make_mpi_sendrecv_limit(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_memcpy_exchange_limit(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_seq_write_limit(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_exchange(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_persist(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_stage(dist::Communicator& comm, std::size_t bytes);

// The partner of this rank; Unsupported when the world cannot be paired.
[[nodiscard]] int paired_partner(const dist::Communicator& comm);

}  // namespace stagekit::perf::replication
