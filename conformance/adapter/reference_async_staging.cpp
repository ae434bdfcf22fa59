#include "reference_async_staging.h"

#include <fmt/format.h>

#include "stagekit/checkpoint/async_save.h"
#include "stagekit/checkpoint/blocking_async_stager.h"
#include "stagekit/checkpoint/default_stager.h"
#include "stagekit/core/error.h"

namespace stagekit::conformance {
namespace {

class ReferenceAsyncStager final : public AsyncStagerUnderTest {
 public:
  explicit ReferenceAsyncStager(std::unique_ptr<checkpoint::AsyncStager> stager) : stager_(std::move(stager)) {}

  StageReturn stage(const Value& sd) override {
    const checkpoint::StagingResult r = stager_->stage(sd);
    StageReturn out;
    if (r.is_future()) {
      out.future = r.future();
    } else {
      out.state_dict = r.get();
    }
    return out;
  }
  void synchronize_staging() override { stager_->synchronize_staging(); }
  bool should_synchronize_after_execute() const override { return stager_->should_synchronize_after_execute(); }
  void close() override { stager_->close(); }
  std::optional<CacheStats> cache_stats() const override {
    const auto s = stager_->stats();
    if (!s) return std::nullopt;
    return CacheStats{s->cached_storages, s->cached_bytes, s->pinned_bytes, s->shared_bytes};
  }
  [[nodiscard]] checkpoint::AsyncStager& inner() const noexcept { return *stager_; }

 private:
  std::unique_ptr<checkpoint::AsyncStager> stager_;
};

}  // namespace

std::unique_ptr<AsyncStagerUnderTest> make_reference_default_stager(const StagingOptions& o) {
  return std::make_unique<ReferenceAsyncStager>(std::make_unique<checkpoint::DefaultStager>(checkpoint::StagingOptions{
      o.use_pinned_memory, o.use_shared_memory, o.use_async_staging, o.use_non_blocking_copy}));
}

std::unique_ptr<AsyncStagerUnderTest> make_reference_blocking_async_stager(const BlockingAsyncStagerConfig& config) {
  return std::make_unique<ReferenceAsyncStager>(
      std::make_unique<checkpoint::BlockingAsyncStager>(config.cache_staged_state_dict, config.type_check));
}

AsyncSaveReturn reference_async_save(const Value& state_dict, const std::string& directory,
                                     AsyncStagerUnderTest* stager) {
  checkpoint::AsyncStager* inner = nullptr;
  if (stager != nullptr) {
    auto* ours = dynamic_cast<ReferenceAsyncStager*>(stager);
    if (ours == nullptr) throw InvalidArgument("async_save: the stager was not made by this implementation");
    inner = &ours->inner();
  }
  const checkpoint::AsyncSaveResponse r = checkpoint::async_save(state_dict, directory, inner);
  AsyncSaveReturn out;
  out.staging_completed = r.staging_completed;
  std::shared_future<checkpoint::CheckpointMetadata> upload = r.upload;
  out.upload = std::async(std::launch::async, [upload] {
                 const checkpoint::CheckpointMetadata& m = upload.get();
                 return fmt::format("{} ({} bytes, {} storages)", m.path.string(), m.file_bytes, m.storages);
               }).share();
  return out;
}

Value reference_load_checkpoint(const std::string& directory) { return checkpoint::load_checkpoint(directory); }

}  // namespace stagekit::conformance
