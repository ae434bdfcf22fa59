// BlockingAsyncStager: fresh buffers without a cache; one pinned cache with it.
#include "stagekit/checkpoint/blocking_async_stager.h"

#include <gtest/gtest.h>

#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::checkpoint {
namespace {

Value cached_model(std::uint64_t seed) {
  return Value::dict({{"w", Tensor::random({64, 64}, DType::float32, seed)},
                      {"nested", Value::dict({{"b", Tensor::random({64}, DType::bfloat16, seed + 1)}})}});
}

TEST(BlockingAsyncStager, WithoutACacheEveryStageGetsNewBuffers) {
  BlockingAsyncStager stager;
  EXPECT_FALSE(stager.should_synchronize_after_execute());
  const Value sd = cached_model(1);
  const StagingResult first = stager.stage(sd);
  ASSERT_FALSE(first.is_future());
  const Value a = first.get();
  const Value b = stager.stage(sd).get();
  EXPECT_TRUE(Tensor::equal(a["w"].as_tensor(), sd["w"].as_tensor()));
  EXPECT_NE(a["w"].as_tensor().storage().data(), b["w"].as_tensor().storage().data());
  EXPECT_FALSE(a["w"].as_tensor().storage().is_alias_of(sd["w"].as_tensor().storage())) << "CPU sources are copied";
}

TEST(BlockingAsyncStager, WithACacheResultsAliasOnePinnedCache) {
  BlockingAsyncStager stager(/*cache_staged_state_dict=*/true);
  const Value sd = cached_model(2);
  const Value a = stager.stage(sd).get();
  const probe::Verdict locked =
      probe::page_locked(a["w"].as_tensor().storage().data(), a["w"].as_tensor().storage().nbytes());
  EXPECT_TRUE(locked.yes) << locked.detail;
  Tensor(sd["w"].as_tensor()).fill_(1.5);
  const Value b = stager.stage(sd).get();
  EXPECT_EQ(a["w"].as_tensor().storage().data(), b["w"].as_tensor().storage().data());
  EXPECT_EQ(a["w"].as_tensor().item({3, 3}), 1.5);
  const Value other = Value::dict({{"w", sd["w"]}});
  EXPECT_THROW((void)stager.stage(other), Error) << "another structure than the cache's";
  stager.close();
  EXPECT_THROW((void)stager.stage(sd), InvalidArgument);
}

}  // namespace
}  // namespace stagekit::checkpoint
