// async_save: what it writes, whose stager it uses and closes, and where errors surface.
#include "stagekit/checkpoint/async_save.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "stagekit/checkpoint/default_stager.h"
#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"

namespace stagekit::checkpoint {
namespace {

namespace fs = std::filesystem;

class AsyncSave : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string templ = (fs::temp_directory_path() / "stagekit-async-save-XXXXXX").string();
    ASSERT_NE(::mkdtemp(templ.data()), nullptr);
    dir_ = templ;
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

Value saved_model(std::uint64_t seed) {
  const Tensor w = Tensor::random({32, 32}, DType::float32, seed);
  return Value::dict({{"w", w}, {"w_t", w.transpose(0, 1)}, {"step", Value(std::int64_t{42})}});
}

TEST_F(AsyncSave, WritesACheckpointThatLoadsBackExactly) {
  const Value sd = saved_model(1);
  const AsyncSaveResponse r = async_save(sd, dir_ / "step_0");
  const CheckpointMetadata meta = r.upload.get();
  r.staging_completed.get();
  EXPECT_EQ(meta.path, checkpoint_file(dir_ / "step_0"));
  EXPECT_EQ(meta.file_bytes, fs::file_size(meta.path));
  EXPECT_EQ(meta.storages, 1U) << "w and its transpose share one storage";
  const Value loaded = load_checkpoint(dir_ / "step_0");
  EXPECT_TRUE(Tensor::equal(loaded["w"].as_tensor(), sd["w"].as_tensor()));
  EXPECT_TRUE(loaded["w_t"].as_tensor().storage().is_alias_of(loaded["w"].as_tensor().storage()));
  EXPECT_EQ(loaded["step"].as_int(), 42);
}

TEST_F(AsyncSave, ACallersStagerServesManySavesAndStaysOpen) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  Value sd = saved_model(2);
  for (int i = 0; i < 3; ++i) {
    Tensor(sd["w"].as_tensor()).fill_(i);
    const AsyncSaveResponse r = async_save(sd, dir_ / std::to_string(i), &stager);
    (void)r.upload.get();
    EXPECT_EQ(load_checkpoint(dir_ / std::to_string(i))["w"].as_tensor().item({1, 1}), i);
  }
  EXPECT_EQ(stager.stats()->cached_storages, 1U) << "the caller's stager keeps its buffers between saves";
}

TEST_F(AsyncSave, AnAsyncStagingErrorSurfacesFromBothFutures) {
  DefaultStager stager(StagingOptions{false, false, true, false});
  const Value bad = Value::dict({{"lock", Value::opaque("threading.Lock")}});
  const AsyncSaveResponse r = async_save(bad, dir_ / "bad", &stager);
  EXPECT_THROW(r.staging_completed.get(), Error);
  EXPECT_THROW((void)r.upload.get(), Error);
  EXPECT_FALSE(fs::exists(checkpoint_file(dir_ / "bad")));
}

TEST_F(AsyncSave, ASynchronousStagingErrorIsRaisedByAsyncSave) {
  const Value bad = Value::dict({{"lock", Value::opaque("threading.Lock")}});
  EXPECT_THROW((void)async_save(bad, dir_ / "bad"), Error);
  EXPECT_FALSE(fs::exists(checkpoint_file(dir_ / "bad")));
}

TEST_F(AsyncSave, AnUnwritableDirectoryFailsTheUpload) {
  const fs::path blocker = dir_ / "file";
  {
    std::FILE* f = std::fopen(blocker.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
  }
  const AsyncSaveResponse r = async_save(saved_model(3), blocker / "sub");
  r.staging_completed.get();  // staging itself succeeded
  EXPECT_THROW((void)r.upload.get(), IoError);
}

}  // namespace
}  // namespace stagekit::checkpoint
