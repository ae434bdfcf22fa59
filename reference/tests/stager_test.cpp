// Reference-specific behaviour of StateDictStager (the portable contract is in conformance/).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include "stagekit/core/allocator.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/stage/state_dict_stager.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit {
namespace {

// "t<i>". (GCC 12 at -O3 reports a false -Wrestrict on `"t" + std::to_string(i)`, GCC bug 105329.)
std::string key_of(std::size_t i) { return fmt::format("t{}", i); }

Value big_dict(std::size_t tensors, std::int64_t elements, std::uint64_t seed) {
  auto d = std::make_shared<Dict>();
  for (std::size_t i = 0; i < tensors; ++i) {
    d->set(key_of(i), Tensor::random({elements}, DType::float32, seed + i));
  }
  return Value(d);
}

TEST(StateDictStager, ParallelCopiesAreExactAcrossPartBoundaries) {
  // Odd sizes so that parts split copies at arbitrary byte positions.
  const Value sd = big_dict(7, 1'000'003, 1);
  StagerOptions options;
  options.copy_threads = 4;
  options.parallel_copy_min_bytes = 1;
  StateDictStager stager(options);
  for (int round = 0; round < 2; ++round) {
    const Value staged = stager.stage(sd);
    for (const auto& [key, v] : sd.as_dict().entries()) {
      ASSERT_TRUE(Tensor::equal(v.as_tensor(), staged.as_dict().at(key).as_tensor())) << dict_key_str(key);
    }
    Tensor(sd["t3"].as_tensor()).fill_(round);
  }
}

TEST(StateDictStager, StatsFollowTheCache) {
  const Tensor t = Tensor::random({1000}, DType::float32, 2);
  const Tensor scalar = Tensor::scalar(1, DType::int32);
  StateDictStager stager({true, true, 5});
  (void)stager.stage(Value::dict({{"a", t}, {"b", t.view({10, 100})}, {"s", scalar}}));
  const StagerStats s = stager.stats();
  EXPECT_EQ(s.cached_storages, 2U);
  EXPECT_EQ(s.cached_bytes, 4004U);
  EXPECT_EQ(s.pinned_bytes, 4000U);  // the 4-byte scalar is below pin_memory_min_bytes
  EXPECT_EQ(s.shared_bytes, 4004U);
  stager.close();
  EXPECT_EQ(stager.stats().cached_storages, 0U);
}

TEST(StateDictStager, CacheEntriesDieWithTheirSource) {
  StateDictStager stager;
  (void)stager.stage(Value::dict({{"temporary", Tensor::scalar(1, DType::int32)}}));
  EXPECT_EQ(stager.stats().cached_storages, 0U);
}

TEST(StateDictStager, ErrorsNameThePathAndRollBack) {
  const HostMemoryUsage before = host_memory_usage();
  StateDictStager stager({true, true, 5});
  const Value sd = Value::dict({{"good", Tensor::random({1 << 18}, DType::float32, 3)},
                                {"layer0", Value::dict({{"bad", Value::opaque("threading.Lock")}})}});
  try {
    (void)stager.stage(sd);
    FAIL() << "no error";
  } catch (const Unsupported& e) {
    EXPECT_EQ(e.path(), "layer0.bad");
    EXPECT_NE(std::string(e.what()).find("threading.Lock"), std::string::npos);
  }
  EXPECT_EQ(stager.stats().cached_storages, 0U);
  const HostMemoryUsage after = host_memory_usage();
  EXPECT_EQ(after.pinned_shared, before.pinned_shared);
  EXPECT_EQ(after.pinned, before.pinned);
}

TEST(StateDictStager, AMetaTensorIsRefusedByPath) {
  StateDictStager stager;
  const Value sd = Value::dict({{"layer", Value::dict({{"w", Tensor::empty({4}, DType::float32, Device::meta())}})}});
  try {
    (void)stager.stage(sd);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "layer.w");
    EXPECT_NE(std::string(e.what()).find("meta device"), std::string::npos) << e.what();
  }
  EXPECT_EQ(stager.stats().cached_storages, 0U);
}

TEST(StateDictStager, CycleMessageNamesBothPlaces) {
  Value list = Value::list({1});
  list.as_list().items.push_back(list);
  StateDictStager stager;
  try {
    (void)stager.stage(Value::dict({{"opt", Value::dict({{"loop", list}})}}));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "opt.loop[1]");
    EXPECT_NE(std::string(e.what()).find("also reached at opt.loop"), std::string::npos) << e.what();
  }
  list.as_list().items.clear();
}

TEST(StateDictStager, NonBlockingHandleWaitsOnDestruction) {
  const Value sd = big_dict(4, 1 << 20, 4);
  StagerOptions options;
  options.parallel_copy_min_bytes = 1;
  StateDictStager stager(options);
  {
    PendingStage p = stager.stage_async(sd);
    EXPECT_TRUE(p.valid());
  }  // destroyed unwaited: must wait, not leave copies running
  PendingStage p = stager.stage_async(sd);
  const Value staged = p.wait();
  EXPECT_TRUE(p.ready());
  EXPECT_TRUE(Tensor::equal(staged["t0"].as_tensor(), sd["t0"].as_tensor()));
  EXPECT_THROW((void)PendingStage().wait(), InvalidArgument);
}

TEST(StateDictStager, LargeDictsStageInParallelAndFailAtomically) {
  // Enough leaves for the parallel path, with a malformed tensor deep inside it.
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < 6000; ++i) d->set(key_of(i), Tensor::random({32}, DType::float32, 600 + i));
  StagerOptions options;
  options.copy_threads = 2;
  StateDictStager stager(options);
  const Value good(d);
  const Value staged = stager.stage(good);
  for (int i : {0, 2999, 3000, 5999}) {
    const std::string key = key_of(i);
    ASSERT_TRUE(Tensor::equal(staged[key].as_tensor(), good[key].as_tensor())) << key;
  }
  EXPECT_EQ(stager.stats().cached_storages, 6000U);

  // Fresh single-handle tensors (the parallel path), each needing a new buffer, one of them malformed.
  auto bad = std::make_shared<Dict>();
  for (int i = 0; i < 6000; ++i) {
    bad->set(key_of(i), i == 4321 ? Tensor::unchecked(Storage::allocate(4), DType::float32, {8}, {1}, 0)
                                  : Tensor::random({1024}, DType::float32, 9000 + i));
  }
  const HostMemoryUsage before = host_memory_usage();
  try {
    (void)stager.stage(Value(bad));
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "t4321");
    EXPECT_NE(std::string(e.what()).find("out of bounds"), std::string::npos) << e.what();
  }
  EXPECT_EQ(host_memory_usage().pageable, before.pageable) << "buffers of the failed stage must be freed";
  EXPECT_EQ(stager.stats().cached_storages, 6000U);
  const Value again = stager.stage(good);
  EXPECT_TRUE(Tensor::equal(again["t4321"].as_tensor(), good["t4321"].as_tensor()));
}

TEST(StateDictStager, CudaSourcesNeedADevice) {
  if (cuda::available()) GTEST_SKIP() << "a CUDA device is present";
  EXPECT_THROW((void)Tensor::empty({4}, DType::float32, Device::cuda(0)), Unsupported);
}

TEST(StateDictStager, DestroyingTheStagerKeepsResultsValid) {
  const Tensor t = Tensor::random({64}, DType::float64, 5);
  Value staged;
  {
    StateDictStager stager({true, true, 5});
    staged = stager.stage(Value::dict({{"t", t}}));
  }
  EXPECT_TRUE(Tensor::equal(staged["t"].as_tensor(), t));
  EXPECT_TRUE(probe::shared_mapping(staged["t"].as_tensor().data_ptr(), 512).yes);
}

}  // namespace
}  // namespace stagekit
