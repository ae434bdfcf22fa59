// Internal: elementwise sum of byte buffers holding elements of one dtype, on the host. The thread
// world reduces with it; the MPI backend uses it for the dtypes MPI has no type for.
//
// Semantics (the same on every backend that uses it):
//   * integers wrap (two's complement, like a C cast of the exact sum);
//   * float32/float64 and complex64/complex128 (componentwise) add in their own precision, in rank
//     order;
//   * float16, bfloat16, float8_e4m3fn, float8_e5m2 add in double in rank order and round once to the
//     dtype (float8_e4m3fn saturates, see dtype.h);
//   * bool is a logical or (the largest byte: 0 or 1), as PyTorch maps a bool sum to max.
#pragma once

#include <cstddef>
#include <span>

#include "stagekit/core/dtype.h"

namespace stagekit::dist::detail {

// `inputs` in rank order, each out.size() bytes; `out` may alias one of them.
void reduce_sum(DType dtype, std::span<const std::span<const std::byte>> inputs, std::span<std::byte> out);

}  // namespace stagekit::dist::detail
