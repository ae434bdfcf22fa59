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
#include <vector>

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

  // broadcast_many: items of several sizes (one empty), in one group.
  const std::vector<std::int64_t> lengths{3, 0, 1000, 17};
  std::vector<Tensor> items;
  for (std::size_t i = 0; i < lengths.size(); ++i) {
    const Tensor expected = Tensor::full({lengths[i]}, static_cast<double>(i + 1), DType::int32);
    items.push_back((r == 0 ? expected : Tensor::zeros({lengths[i]}, DType::int32)).to(Device::cuda(device)));
  }
  std::vector<std::span<std::byte>> spans;
  for (const Tensor& t : items)
    spans.emplace_back(static_cast<std::byte*>(t.data_ptr()), static_cast<std::size_t>(t.numel()) * 4);
  nccl->broadcast_many(spans, 0, nullptr);
  for (std::size_t i = 0; i < items.size(); ++i) {
    EXPECT_TRUE(
        Tensor::equal(items[i].to(Device::cpu()), Tensor::full({lengths[i]}, static_cast<double>(i + 1), DType::int32)))
        << "broadcast_many item " << i;
  }

  // send_recv: two messages each way at once, each rank's own values, received exactly.
  const int peer = 1 - r;
  const Tensor out_a = Tensor::full({64}, 100 + r, DType::float32).to(Device::cuda(device));
  const Tensor out_b = Tensor::full({5}, 200 + r, DType::int64).to(Device::cuda(device));
  const Tensor in_a = Tensor::zeros({64}, DType::float32).to(Device::cuda(device));
  const Tensor in_b = Tensor::zeros({5}, DType::int64).to(Device::cuda(device));
  const auto bytes = [](const Tensor& t) {
    return std::span(static_cast<std::byte*>(t.data_ptr()),
                     static_cast<std::size_t>(t.numel()) * element_size(t.dtype()));
  };
  const std::span<const std::byte> sends[] = {bytes(out_a), bytes(out_b)};
  const std::span<std::byte> recvs[] = {bytes(in_a), bytes(in_b)};
  nccl->send_recv(peer, sends, recvs, 3, nullptr);
  EXPECT_TRUE(Tensor::equal(in_a.to(Device::cpu()), Tensor::full({64}, 100 + peer, DType::float32)));
  EXPECT_TRUE(Tensor::equal(in_b.to(Device::cpu()), Tensor::full({5}, 200 + peer, DType::int64)));

  // A message of another size than the receive expects: received aside, then an error naming it,
  // on the rank that expected otherwise; the communicator is broken there afterwards.
  const Tensor in_short = Tensor::zeros({r == 0 ? 32 : 64}, DType::float32).to(Device::cuda(device));
  const std::span<const std::byte> one_send[] = {bytes(out_a)};
  const std::span<std::byte> one_recv[] = {bytes(in_short)};
  if (r == 0) {
    testing::expect_error<CommunicationError>([&] { nccl->send_recv(peer, one_send, one_recv, 4, nullptr); },
                                              {"message #0 from rank 1 has 256 bytes, 128 were expected"},
                                              "send_recv of a wrong size");
    testing::expect_error<CommunicationError>([&] { nccl->barrier(); }, {"message #0 from rank 1"},
                                              "the communicator after a wrong size");
  } else {
    nccl->send_recv(peer, one_send, one_recv, 4, nullptr);  // what rank 0 sent has the size expected here
  }
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
