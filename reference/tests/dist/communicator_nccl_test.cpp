// Tests of the NCCL Communicator (registered as dist.nccl_np2, under mpirun with 2 ranks when MPI is
// built). Without a usable CUDA device they report "not_supported: <reason>" as a GoogleTest skip and
// check that nccl_communicator() is Unsupported with that reason; with one GPU per rank they check a
// 2-rank all-reduce (and a broadcast) on device tensors. main() combines the ranks' results.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>

#include "communicator_checks.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using namespace std::chrono_literals;

Communicator* g_world = nullptr;  // the MPI world when launched by mpirun, else null

int local_rank() {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) {
    if (const char* v = std::getenv(name)) return std::atoi(v);
  }
  return g_world != nullptr ? g_world->rank() : 0;
}

TEST(NcclCommunicator, UnsupportedWithoutUsableDevice) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is usable here";
  const std::string reason = cuda::availability().reason;
  if (g_world != nullptr) {
    testing::expect_error<Unsupported>([] { (void)nccl_communicator(*g_world); }, {reason}, "nccl over MPI");
  } else {
    run_thread_world(1, [&](Communicator& c) {
      testing::expect_error<Unsupported>([&] { (void)nccl_communicator(c); }, {reason}, "nccl over a thread world");
    });
  }
}

TEST(NcclCommunicator, AllReduceOnTwoRanks) {
  if (!cuda::available()) GTEST_SKIP() << "not_supported: " << cuda::availability().reason;
  if (g_world == nullptr || g_world->size() != 2) {
    GTEST_SKIP() << "not_supported: needs exactly 2 MPI ranks (run under mpirun -np 2)";
  }
  // One device per rank: every rank learns whether some rank lacks its own, so that all skip alike.
  const int devices = cuda::availability().device_count;
  std::int32_t lacking = local_rank() < devices ? 0 : 1;
  g_world->all_reduce(std::as_writable_bytes(std::span(&lacking, 1)), DType::int32, ReduceOp::sum);
  if (lacking != 0) GTEST_SKIP() << "not_supported: needs one CUDA device per rank, found " << devices << " on a node";
  const int device = local_rank() % devices;
  cuda::set_device(device);
  auto nccl = nccl_communicator(*g_world);
  ASSERT_NE(nccl, nullptr);
  nccl->set_timeout(60s);
  EXPECT_EQ(nccl->backend(), "nccl");
  EXPECT_EQ(nccl->size(), 2);
  const int r = nccl->rank();

  Tensor sum = Tensor::full({1000}, r + 1, DType::float32).to(Device::cuda(device));
  nccl->all_reduce_tensor(sum);
  EXPECT_TRUE(Tensor::equal(sum.to(Device::cpu()), Tensor::full({1000}, 3, DType::float32)));

  Tensor ints = Tensor::full({7}, 10 * (r + 1), DType::int64).to(Device::cuda(device));
  nccl->all_reduce_tensor(ints);
  EXPECT_TRUE(Tensor::equal(ints.to(Device::cpu()), Tensor::full({7}, 30, DType::int64)));

  Tensor b =
      (r == 0 ? Tensor::arange(16, DType::bfloat16) : Tensor::zeros({16}, DType::bfloat16)).to(Device::cuda(device));
  nccl->broadcast_tensor(b, 0);
  EXPECT_TRUE(Tensor::equal(b.to(Device::cpu()), Tensor::arange(16, DType::bfloat16)));
  nccl->barrier();
}

}  // namespace
}  // namespace stagekit::dist

int main(int argc, char** argv) {
  using namespace stagekit::dist;
  ::testing::InitGoogleTest(&argc, argv);
  int failed = 1;
  try {
    std::unique_ptr<Communicator> world;
    if (mpi_compiled() && launched_by_mpi()) world = mpi_world();
    g_world = world.get();
    failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
    if (world) {
      std::int32_t any = failed;
      world->all_reduce(std::as_writable_bytes(std::span(&any, 1)), stagekit::DType::int32, ReduceOp::sum);
      failed = any != 0 ? 1 : 0;
    }
    g_world = nullptr;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "communicator_nccl_test: %s\n", e.what());
    failed = 1;
  }
  return failed;
}
