#include "stagekit/checkpoint/async_save.h"

#include <memory>
#include <system_error>

#include "stagekit/checkpoint/default_stager.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/packed_state_dict.h"
#include "stagekit/replicate/replica_file.h"

namespace stagekit::checkpoint {
namespace {

// Closes the stager async_save made itself, whatever happens to the upload.
struct CloseOwnedStager {
  explicit CloseOwnedStager(std::shared_ptr<DefaultStager> s) : stager(std::move(s)) {}
  std::shared_ptr<DefaultStager> stager;
  CloseOwnedStager(const CloseOwnedStager&) = delete;
  CloseOwnedStager& operator=(const CloseOwnedStager&) = delete;
  ~CloseOwnedStager() {
    if (stager) stager->close();
  }
};

CheckpointMetadata upload(const StagingResult& staged, std::promise<void>& staging_completed,
                          const std::filesystem::path& directory) {
  Value state_dict;
  try {
    state_dict = staged.get();
  } catch (...) {
    staging_completed.set_exception(std::current_exception());
    throw;
  }
  staging_completed.set_value();
  std::error_code ec;
  std::filesystem::create_directories(directory, ec);
  if (ec) throw IoError("async_save: cannot create " + directory.string() + ": " + ec.message());
  const replicate::PackedStateDict packed = replicate::pack_state_dict(state_dict);
  CheckpointMetadata meta;
  meta.path = checkpoint_file(directory);
  meta.file_bytes = replicate::write_replica(meta.path, packed);
  meta.storages = packed.storages.size();
  return meta;
}

}  // namespace

std::filesystem::path checkpoint_file(const std::filesystem::path& directory) {
  return directory / "checkpoint.stagekit";
}

AsyncSaveResponse async_save(const Value& state_dict, const std::filesystem::path& directory, AsyncStager* stager) {
  std::shared_ptr<DefaultStager> owned;
  if (stager == nullptr) {
    owned = std::make_shared<DefaultStager>(StagingOptions{false, false, false, false});
    stager = owned.get();
  }
  std::optional<StagingResult> staged;
  try {
    staged = stager->stage(state_dict);
    if (!staged->is_future() && stager->should_synchronize_after_execute()) stager->synchronize_staging();
  } catch (...) {
    if (owned) owned->close();
    throw;
  }
  auto staging_completed = std::make_shared<std::promise<void>>();
  AsyncSaveResponse response;
  response.staging_completed = staging_completed->get_future().share();
  response.upload = std::async(std::launch::async, [staged = *staged, staging_completed, directory, owned]() mutable {
                      const CloseOwnedStager closer(std::move(owned));
                      return upload(staged, *staging_completed, directory);
                    }).share();
  return response;
}

Value load_checkpoint(const std::filesystem::path& directory) {
  return replicate::load_replica(checkpoint_file(directory));
}

}  // namespace stagekit::checkpoint
