// DefaultStager: the modes of StagingOptions, the order of stages, close(), and errors.
#include "stagekit/checkpoint/default_stager.h"

#include <gtest/gtest.h>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"

namespace stagekit::checkpoint {
namespace {

Value weights(std::uint64_t seed, std::int64_t elements = 1024) {
  return Value::dict({{"w", Tensor::random({elements}, DType::float32, seed)}, {"step", Value(std::int64_t{3})}});
}

TEST(DefaultStager, SyncModeReturnsTheDictAndReusesItsBuffers) {
  DefaultStager stager(StagingOptions{false, false, false, false});
  const Value sd = weights(1);
  const StagingResult first = stager.stage(sd);
  ASSERT_FALSE(first.is_future());
  EXPECT_TRUE(first.done());
  const Value a = first.get();
  EXPECT_TRUE(Tensor::equal(a["w"].as_tensor(), sd["w"].as_tensor()));
  EXPECT_FALSE(a["w"].as_tensor().storage().is_alias_of(sd["w"].as_tensor().storage()));
  Tensor(sd["w"].as_tensor()).fill_(4.0);
  const Value b = stager.stage(sd).get();
  EXPECT_EQ(a["w"].as_tensor().storage().data(), b["w"].as_tensor().storage().data()) << "buffers reused";
  EXPECT_EQ(a["w"].as_tensor().item({0}), 4.0) << "the earlier result aliases the refilled buffer";
  ASSERT_TRUE(stager.stats().has_value());
  EXPECT_EQ(stager.stats()->cached_storages, 1U);
  EXPECT_TRUE(stager.should_synchronize_after_execute());
}

TEST(DefaultStager, AsyncModeRunsStagesInSubmissionOrder) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  const Value big = weights(2, std::int64_t{4} << 20);
  const Value small = weights(3);
  const StagingResult a = stager.stage(big);
  const StagingResult b = stager.stage(small);
  ASSERT_TRUE(a.is_future() && b.is_future());
  (void)b.get();
  EXPECT_TRUE(a.done()) << "a later stage completed before an earlier one";
  EXPECT_TRUE(Tensor::equal(a.get()["w"].as_tensor(), big["w"].as_tensor()));
  stager.synchronize_staging();
}

TEST(DefaultStager, AnAsyncErrorSurfacesFromTheFutureAndSynchronizeStaging) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  const Value bad = Value::dict({{"layer", Value::dict({{"lock", Value::opaque("threading.Lock")}})}});
  const StagingResult r = stager.stage(bad);  // does not throw
  ASSERT_TRUE(r.is_future());
  EXPECT_THROW((void)r.get(), Error);
  EXPECT_THROW(stager.synchronize_staging(), Error);
  EXPECT_NO_THROW((void)stager.stage(weights(4)).get()) << "the stager stays usable";
}

TEST(DefaultStager, CloseWaitsThenRefusesAndIsIdempotent) {
  DefaultStager stager(StagingOptions{true, false, true, false});
  const Value big = weights(5, std::int64_t{4} << 20);
  const StagingResult a = stager.stage(big);
  const StagingResult b = stager.stage(big);
  stager.close();
  EXPECT_TRUE(a.done() && b.done()) << "close() returned with stages in flight";
  EXPECT_TRUE(Tensor::equal(b.get()["w"].as_tensor(), big["w"].as_tensor()));
  EXPECT_THROW((void)stager.stage(big), InvalidArgument);
  EXPECT_NO_THROW(stager.close());
  EXPECT_EQ(stager.stats()->cached_storages, 0U);
}

TEST(DefaultStager, CloseDropsTheLastResultButKeepsALastError) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  const Value sd = weights(7);
  WeakStorage buffer;
  {
    const StagingResult r = stager.stage(sd);
    buffer = r.get()["w"].as_tensor().storage().weak();
  }
  EXPECT_FALSE(buffer.expired()) << "the cache and the last future hold the buffer before close()";
  stager.close();
  EXPECT_TRUE(buffer.expired()) << "a closed stager still holds its last result";

  DefaultStager failing(StagingOptions{false, false, true, false});
  (void)failing.stage(Value::dict({{"lock", Value::opaque("threading.Lock")}}));
  failing.close();
  EXPECT_THROW(failing.synchronize_staging(), Error) << "the failed last stage is forgotten by close()";
}

TEST(DefaultStager, NonBlockingCopyNeedsAnAccelerator) {
  if (cuda::available()) GTEST_SKIP() << "an accelerator is present";
  try {
    DefaultStager stager;  // every option on, as PyTorch's StagingOptions()
    FAIL() << "constructed without an accelerator";
  } catch (const Unsupported& e) {
    EXPECT_NE(std::string(e.what()).find("non-blocking"), std::string::npos) << e.what();
  }
}

TEST(DefaultStager, TheSourceLivesUntilItIsStaged) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  StagingResult r = [&] {
    const Value sd = weights(6, std::int64_t{1} << 20);
    return stager.stage(sd);  // the caller drops its dict at once
  }();
  const Value staged = r.get();
  EXPECT_EQ(staged["w"].as_tensor().numel(), std::int64_t{1} << 20);
  EXPECT_EQ(staged["step"].as_int(), 3);
}

}  // namespace
}  // namespace stagekit::checkpoint
