// The MPI entry points of a build without MPI (STAGEKIT_HAVE_MPI == 0): each reports Unsupported.
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

[[noreturn]] void unsupported(const char* what) {
  throw Unsupported(std::string(what) +
                    ": stagekit was built without MPI (STAGEKIT_WITH_MPI=OFF, or no MPI was found at configure time)");
}

}  // namespace

std::unique_ptr<Communicator> mpi_world() { unsupported("mpi_world"); }
std::unique_ptr<Communicator> mpi_adopt(void* /*mpi_comm_handle*/) { unsupported("mpi_adopt"); }

}  // namespace stagekit::dist
