// Elementwise host sums for every dtype (see host_reduce.h for the semantics).
#include "host_reduce.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "stagekit/core/error.h"

namespace stagekit::dist::detail {
namespace {

template <class T>
T load(const std::byte* p) noexcept {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

template <class T>
void store(std::byte* p, T v) noexcept {
  std::memcpy(p, &v, sizeof(T));
}

// Sums with `Acc` arithmetic (unsigned for integers so that overflow wraps), element by element.
template <class T, class Acc>
void sum_as(std::span<const std::span<const std::byte>> inputs, std::span<std::byte> out) {
  const std::size_t n = out.size() / sizeof(T);
  std::vector<T> result(n);
  for (std::size_t i = 0; i < n; ++i) {
    Acc acc = static_cast<Acc>(load<T>(inputs[0].data() + i * sizeof(T)));
    for (std::size_t r = 1; r < inputs.size(); ++r) acc += static_cast<Acc>(load<T>(inputs[r].data() + i * sizeof(T)));
    result[i] = static_cast<T>(acc);
  }
  if (n != 0) std::memcpy(out.data(), result.data(), n * sizeof(T));
}

void sum_through_double(DType dtype, std::span<const std::span<const std::byte>> inputs, std::span<std::byte> out) {
  const std::size_t es = element_size(dtype);
  const std::size_t n = out.size() / es;
  std::vector<double> acc(n, 0.0);
  for (const auto& in : inputs) {
    for (std::size_t i = 0; i < n; ++i) acc[i] += decode_element(dtype, in.subspan(i * es, es));
  }
  for (std::size_t i = 0; i < n; ++i) encode_element(dtype, acc[i], out.subspan(i * es, es));
}

void max_bytes(std::span<const std::span<const std::byte>> inputs, std::span<std::byte> out) {
  std::vector<std::byte> result(inputs[0].begin(), inputs[0].end());
  for (std::size_t r = 1; r < inputs.size(); ++r) {
    for (std::size_t i = 0; i < result.size(); ++i) result[i] = std::max(result[i], inputs[r][i]);
  }
  std::copy(result.begin(), result.end(), out.begin());
}

}  // namespace

void reduce_sum(DType dtype, std::span<const std::span<const std::byte>> inputs, std::span<std::byte> out) {
  STAGEKIT_INTERNAL_ASSERT(!inputs.empty());
  for (const auto& in : inputs) STAGEKIT_INTERNAL_ASSERT(in.size() == out.size());
  switch (dtype) {
    case DType::bool_: max_bytes(inputs, out); return;
    case DType::uint8:
    case DType::int8: sum_as<std::uint8_t, std::uint8_t>(inputs, out); return;
    case DType::uint16:
    case DType::int16: sum_as<std::uint16_t, std::uint16_t>(inputs, out); return;
    case DType::uint32:
    case DType::int32: sum_as<std::uint32_t, std::uint32_t>(inputs, out); return;
    case DType::uint64:
    case DType::int64: sum_as<std::uint64_t, std::uint64_t>(inputs, out); return;
    case DType::float32:
    case DType::complex64: sum_as<float, float>(inputs, out); return;  // complex: componentwise
    case DType::float64:
    case DType::complex128: sum_as<double, double>(inputs, out); return;
    case DType::float16:
    case DType::bfloat16:
    case DType::float8_e4m3fn:
    case DType::float8_e5m2: sum_through_double(dtype, inputs, out); return;
  }
  throw InternalError("reduce_sum: unknown dtype");
}

}  // namespace stagekit::dist::detail
