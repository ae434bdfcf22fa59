// nccl_communicator() of a build without NCCL (STAGEKIT_HAVE_NCCL == 0): reports Unsupported.
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {

std::unique_ptr<Communicator> nccl_communicator(Communicator& /*bootstrap*/) {
  throw Unsupported(
      "nccl_communicator: stagekit was built without NCCL (STAGEKIT_WITH_NCCL=OFF, no CUDA toolkit, or NCCL not found "
      "at configure time)");
}

}  // namespace stagekit::dist
