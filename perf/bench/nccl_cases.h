// The per-rank work of the NCCL benchmarks (registered by dist_bench.cpp; perf/METRICS.md, "NCCL
// benchmarks"). They run under mpirun with one CUDA device per rank (rank r of a node uses device
// r): in a thread world, without a device per rank, or in a build without NCCL every one is
// Unsupported with the reason. S is the bytes of the name; N the world size.
//   engine_all_gather   ncclAllGather of S/N bytes per rank (the raw engine, nccl_engine.h)
//   engine_broadcast    ncclBroadcast of S bytes from rank 0
//   engine_send_recv    ncclSend + ncclRecv of S bytes each way with the partner (r + N/2) % N,
//                       grouped (an even N only)
//   all_gather          Communicator::all_gather on stagekit's NCCL communicator, in place
//   broadcast           Communicator::broadcast_many of one S-byte buffer on it, in place
//   send_recv           Communicator::send_recv of S bytes each way with the same partner
//   gather_state_dict   the implementation's gather_state_dict of float32 DTensors [Shard(0)] in
//                       CUDA memory on a 1-D CUDA mesh (`many`: 64 of them, else one), over the MPI
//                       world the utilities take
// Every buffer is device memory of the rank's device (Storage::allocate on cuda:r), filled and
// synchronised before the first iteration; each case verifies its last result exactly on the host.
// The NCCL world (stagekit's communicator and the raw engine) is made once, by the first NCCL
// benchmark, collectively; release_world() frees it before MPI is finalised.
#pragma once

#include <cstddef>
#include <memory>

#include "../driver/dist_world.h"

namespace stagekit::perf::nccl {

enum class Op { engine_all_gather, engine_broadcast, engine_send_recv, all_gather, broadcast, send_recv };

[[nodiscard]] std::unique_ptr<RankCase> make_case(Op op, dist::Communicator& comm, std::size_t bytes);
[[nodiscard]] CaseFactory gather_state_dict_factory(bool many, std::size_t bytes);

// Frees the NCCL world (its communicators, streams and device memory), if one was made.
void release_world();

}  // namespace stagekit::perf::nccl
