// stagekit/core/dtype.h — element types a checkpoint can hold (PyTorch's dtypes).
//
// Each DType has a stable lower-case name equal to PyTorch's (`float32`, `bfloat16`,
// `float8_e4m3fn`, ...), an element size in bytes and a category. Conversions between double and
// every dtype's bit pattern live here too (used by fill, random fill and element reads): floating
// types round to nearest even, float8_e4m3fn saturates to its largest finite value, integer types
// wrap like a C cast of the truncated value, bool is 0 or 1.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace stagekit {

enum class DType : std::uint8_t {
  bool_,
  uint8,
  int8,
  int16,
  int32,
  int64,
  uint16,
  uint32,
  uint64,
  float16,
  bfloat16,
  float32,
  float64,
  complex64,
  complex128,
  float8_e4m3fn,
  float8_e5m2,
};

enum class DTypeCategory : std::uint8_t { boolean, unsigned_integer, signed_integer, floating, complex };

inline constexpr std::array<DType, 17> kAllDTypes = {
    DType::bool_,   DType::uint8,     DType::int8,       DType::int16,         DType::int32,       DType::int64,
    DType::uint16,  DType::uint32,    DType::uint64,     DType::float16,       DType::bfloat16,    DType::float32,
    DType::float64, DType::complex64, DType::complex128, DType::float8_e4m3fn, DType::float8_e5m2,
};

[[nodiscard]] std::string_view dtype_name(DType dtype) noexcept;
[[nodiscard]] std::optional<DType> dtype_from_name(std::string_view name) noexcept;
[[nodiscard]] std::size_t element_size(DType dtype) noexcept;
[[nodiscard]] DTypeCategory dtype_category(DType dtype) noexcept;
[[nodiscard]] bool is_floating(DType dtype) noexcept;  // floating or complex

// Writes `value` converted to `dtype` into `out` (element_size(dtype) bytes). For complex dtypes
// `value` is the real part and the imaginary part is zero.
void encode_element(DType dtype, double value, std::span<std::byte> out) noexcept;
// Reads one element of `dtype` from `in` as a double (the real part for complex dtypes).
[[nodiscard]] double decode_element(DType dtype, std::span<const std::byte> in) noexcept;

// Bit patterns that only a byte-exact copy keeps: a negative quiet NaN with a payload, -0.0,
// +infinity, a signalling NaN with a payload, -infinity and the smallest subnormal (the ones the
// format has; float8_e4m3fn has no infinities). For complex dtypes, the patterns of one component.
// Empty for booleans and integers. Each pattern is the element's (component's) little-endian bits.
[[nodiscard]] std::span<const std::uint64_t> special_bit_patterns(DType dtype) noexcept;

}  // namespace stagekit
