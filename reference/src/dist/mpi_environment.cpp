// MPI facts that need no MPI library: whether stagekit was built with MPI, and whether this process
// was started by an MPI launcher (environment variables of Open MPI, MPICH/Hydra, PMIx, Slurm).
#include <cstdlib>

#include "stagekit/config.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {

bool mpi_compiled() noexcept { return STAGEKIT_HAVE_MPI != 0; }

bool launched_by_mpi() noexcept {
  static constexpr const char* kVariables[] = {
      "OMPI_COMM_WORLD_SIZE",  // Open MPI's mpirun
      "PMIX_RANK",             // PMIx launchers (Open MPI 5, srun --mpi=pmix, ...)
      "PMI_SIZE",              // PMI-1/2: MPICH's Hydra, Intel MPI, srun --mpi=pmi2
      "PMI_RANK",
      "MPI_LOCALNRANKS",      // MPICH
      "MV2_COMM_WORLD_SIZE",  // MVAPICH2
      "SLURM_PROCID",         // srun
  };
  for (const char* name : kVariables) {
    if (std::getenv(name) != nullptr) return true;
  }
  return false;
}

}  // namespace stagekit::dist
