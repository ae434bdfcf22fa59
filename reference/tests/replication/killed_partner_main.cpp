// A replication partner killed mid-exchange (SIGKILL after its preamble and manifest, before any
// storage byte): the survivor's stage() must end with a TimeoutError within the timeout, and its
// previous replica must still load, with no temporary file left. Run with 2 ranks under mpirun with
// Open MPI's recovery enabled, checked by killed_partner.sh. The survivor prints
// "survivor: timeout after T ms: <message>" and "survivor: replica intact", or "survivor: FAILED ...".
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "stagekit/core/error.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/replicate/replica_transport.h"
#include "stagekit/replicate/replication_stager.h"
#include "stagekit/testing/fault_injection.h"

namespace {
namespace fs = std::filesystem;
using namespace stagekit;

Value state_dict(int rank, std::uint64_t round) {
  return Value::dict(
      {{"weight", Tensor::random({256, 64}, DType::float32, 10 * static_cast<std::uint64_t>(rank) + round)},
       {"round", Value(static_cast<std::int64_t>(round))}});
}

int survivor_checks(replicate::ReplicationStager& stager, int victim) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  try {
    (void)stager.stage(state_dict(stager.rank(), 1));
    std::printf("survivor: FAILED: stage() returned although rank %d was killed\n", victim);
    return 1;
  } catch (const TimeoutError& e) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    std::printf("survivor: timeout after %lld ms: %s\n", static_cast<long long>(ms), e.what());
  } catch (const std::exception& e) {
    std::printf("survivor: FAILED: expected a timeout error, got: %s\n", e.what());
    return 1;
  }
  const Value kept = replicate::load_replica(stager.persisted_path());
  const Value expected = state_dict(victim, 0);
  if (!Tensor::equal(kept["weight"].as_tensor(), expected["weight"].as_tensor()) || kept["round"].as_int() != 0) {
    std::printf("survivor: FAILED: the replica on disk is not the first round's\n");
    return 1;
  }
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(stager.storage_dir())) ++files;
  if (files != 1) {
    std::printf("survivor: FAILED: %d files in the storage directory, expected only the replica\n", files);
    return 1;
  }
  std::printf("survivor: replica intact\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s STORAGE_DIR (run by killed_partner.sh under mpirun -np 2)\n", argv[0]);
    return 2;
  }
  auto world = dist::mpi_world();
  const int rank = world->rank();
  const int victim = 0;  // the lower rank sends first: it dies after its manifest
  stagekit::testing::DyingCommunicator dying(*world, replicate::kReplicaTag + 1, [] { std::raise(SIGKILL); });
  replicate::ReplicationOptions options;
  options.timeout = std::chrono::seconds(3);
  // Each rank its own directory under the script's, which removes it (the victim cannot clean up).
  const fs::path dir = fs::path(argv[1]) / ("rank" + std::to_string(rank));
  options.storage_dir = dir;
  int status = 0;
  try {
    replicate::ReplicationStager first(*world, options);
    (void)first.stage(state_dict(rank, 0));
    if (rank == victim) {
      replicate::ReplicationStager dies(dying, options);
      (void)dies.stage(state_dict(rank, 1));
      std::printf("victim: FAILED: still alive\n");
      status = 1;
    } else {
      status = survivor_checks(first, victim);
    }
  } catch (const std::exception& e) {
    std::printf("rank %d: FAILED: %s\n", rank, e.what());
    status = 1;
  }
  std::fflush(stdout);
  fs::remove_all(dir);
  return status;
}
