// manifest_decoder.h — unpack_state_dict()'s reader: a manifest and its storages back into a tree,
// every field verified before it is used (FORMAT.md, "Manifest", "What readers verify").
#pragma once

#include <span>

#include "stagekit/core/storage.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate::detail {

// CorruptionError ("manifest at offset N: ...", naming the state-dict path reached) for a malformed
// manifest; InvalidArgument when `storages` do not match the manifest's storage table.
[[nodiscard]] Value decode_manifest(std::span<const std::byte> manifest, std::span<const Storage> storages,
                                    const UnpackOptions& options);

}  // namespace stagekit::replicate::detail
