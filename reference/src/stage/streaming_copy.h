// Internal: the host copy routine of the stager. Large copies use non-temporal (streaming) stores:
// staged bytes are not read back by this CPU soon, and streaming stores skip the read-for-ownership
// of every destination line, which is what separates a cached memcpy from memory bandwidth. glibc
// only switches to streaming stores above a threshold derived from the cache size, which on large
// (or virtualised) caches is far above the size of one tensor.
#pragma once

#include <cstddef>

namespace stagekit::detail {

inline constexpr std::size_t kStreamingCopyMinBytes = std::size_t{256} << 10;

// Copies n bytes (non-overlapping); streaming stores from kStreamingCopyMinBytes up where available.
void streaming_copy(void* dst, const void* src, std::size_t n) noexcept;

}  // namespace stagekit::detail
