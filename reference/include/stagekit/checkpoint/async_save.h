// stagekit/checkpoint/async_save.h — async_save (PyTorch's, spec B.5) and the checkpoint it writes.
//
// async_save(state_dict, directory, stager) stages the state dict with `stager` and writes the staged
// dict on an upload thread to `directory`/checkpoint.stagekit (the replica file format: written
// atomically, read back verified; the directory is created). Without a stager it makes its own
// DefaultStager with every option off and closes it exactly once: when the upload completes, or at
// once when staging fails, so that repeated saves do not accumulate staging buffers. A stager the
// caller passes stays the caller's (reused across saves, closed by the caller).
//
// The response's futures: `staging_completed` is ready once the staged dict is complete (the source
// may then change); `upload` yields the checkpoint's metadata once the file is durable, or rethrows
// the staging or write error. Dropping the response waits for the upload.
#pragma once

#include <cstdint>
#include <filesystem>
#include <future>
#include <string>

#include "stagekit/checkpoint/async_stager.h"

namespace stagekit::checkpoint {

struct CheckpointMetadata {
  std::filesystem::path path;  // the checkpoint file
  std::uint64_t file_bytes = 0;
  std::size_t storages = 0;
};

struct AsyncSaveResponse {
  std::shared_future<void> staging_completed;
  std::shared_future<CheckpointMetadata> upload;
};

// The file async_save writes in `directory`.
[[nodiscard]] std::filesystem::path checkpoint_file(const std::filesystem::path& directory);

// `stager` may be null (async_save then owns a synchronous, unpinned, unshared, blocking DefaultStager).
AsyncSaveResponse async_save(const Value& state_dict, const std::filesystem::path& directory,
                             AsyncStager* stager = nullptr);

// Reads the checkpoint async_save wrote in `directory`, verified (CorruptionError / IoError).
[[nodiscard]] Value load_checkpoint(const std::filesystem::path& directory);

}  // namespace stagekit::checkpoint
