// The per-rank work of the broadcast benchmarks (registered by dist_bench.cpp; perf/METRICS.md,
// "Distributed benchmarks"). S is the bytes rank 0 broadcasts; every rank ends with all of them.
//   mpi_bcast_limit       MPI_Bcast of S pattern bytes from rank 0 into a touched buffer
//                         (MPI world only: Unsupported elsewhere)
//   memcpy_bcast_limit    every rank but rank 0 copies S bytes into a touched buffer (thread world
//                         only: the engine of ranks sharing one address space)
//   broadcast             Communicator::broadcast_many of one S-byte buffer from rank 0, in place
//   broadcast_state_dict  the implementation's broadcast_state_dict of a dict of float32 tensors,
//                         S bytes in all (`many`: 64 tensors; else one), from rank 0 into a local
//                         dict holding a tensor of the same shape under every key; Unsupported
//                         without the state_dict_utilities capability
// Buffers come from stagekit's pageable allocator, as the tensors do. Each verifies its last result
// exactly (RankCase::verify).
#pragma once

#include <cstddef>
#include <memory>

#include "../driver/dist_world.h"

namespace stagekit::perf::broadcast {

[[nodiscard]] std::unique_ptr<RankCase> make_mpi_bcast_limit(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_memcpy_bcast_limit(dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] std::unique_ptr<RankCase> make_broadcast(dist::Communicator& comm, std::size_t bytes);
// The tensors are made once per process and shared by the ranks of a thread world (see
// broadcast_state_dict_factory).
[[nodiscard]] CaseFactory broadcast_state_dict_factory(bool many, std::size_t bytes);

}  // namespace stagekit::perf::broadcast
