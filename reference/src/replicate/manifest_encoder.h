// manifest_encoder.h — pack_state_dict()'s walk: a state-dict tree into a manifest plus its distinct
// storages (FORMAT.md, "Manifest").
#pragma once

#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate::detail {

// Walks `root` once. Opaque leaves are Unsupported, cycles, undefined tensors and trees nested deeper
// than kMaxNesting are InvalidArgument (so are parameters under options.refuse_parameters); every
// error names the state-dict path.
[[nodiscard]] PackedStateDict encode_manifest(const Value& root, const PackOptions& options);

}  // namespace stagekit::replicate::detail
