// A rank killed mid-run (SIGKILL, no goodbye): the survivors' next collective must end with a
// TimeoutError within the timeout, naming the missing rank. Run under mpirun with Open MPI's
// recovery enabled (otherwise the launcher tears every rank down), checked by killed_rank.sh.
// Each survivor prints one line: "rank R: timeout after T ms: <message>" or "rank R: FAILED ...".
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

int main() {
  using Clock = std::chrono::steady_clock;
  auto world = stagekit::dist::mpi_world();
  world->set_timeout(std::chrono::seconds(3));
  world->barrier();
  if (world->rank() == world->size() - 1) std::raise(SIGKILL);
  std::vector<std::byte> mine(64, std::byte{1});
  std::vector<std::byte> all(mine.size() * static_cast<std::size_t>(world->size()));
  const auto start = Clock::now();
  try {
    world->all_gather(mine, all);
    std::printf("rank %d: FAILED: the all-gather returned although rank %d was killed\n", world->rank(),
                world->size() - 1);
  } catch (const stagekit::TimeoutError& e) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
    std::printf("rank %d: timeout after %lld ms: %s\n", world->rank(), static_cast<long long>(ms), e.what());
  } catch (const std::exception& e) {
    std::printf("rank %d: FAILED: expected a timeout error, got: %s\n", world->rank(), e.what());
  }
  std::fflush(stdout);
  // The communicator is broken now: MPI_Finalize with a dead peer can wait on Open MPI's teardown for
  // minutes, so a survivor leaves without it (its line is already out).
  std::_Exit(0);
}
