#include "stagekit/core/dtype.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace stagekit {
namespace {

struct DTypeInfo {
  std::string_view name;
  std::size_t size;
  DTypeCategory category;
};

constexpr DTypeInfo kInfo[] = {
    {"bool", 1, DTypeCategory::boolean},
    {"uint8", 1, DTypeCategory::unsigned_integer},
    {"int8", 1, DTypeCategory::signed_integer},
    {"int16", 2, DTypeCategory::signed_integer},
    {"int32", 4, DTypeCategory::signed_integer},
    {"int64", 8, DTypeCategory::signed_integer},
    {"uint16", 2, DTypeCategory::unsigned_integer},
    {"uint32", 4, DTypeCategory::unsigned_integer},
    {"uint64", 8, DTypeCategory::unsigned_integer},
    {"float16", 2, DTypeCategory::floating},
    {"bfloat16", 2, DTypeCategory::floating},
    {"float32", 4, DTypeCategory::floating},
    {"float64", 8, DTypeCategory::floating},
    {"complex64", 8, DTypeCategory::complex},
    {"complex128", 16, DTypeCategory::complex},
    {"float8_e4m3fn", 1, DTypeCategory::floating},
    {"float8_e5m2", 1, DTypeCategory::floating},
};

const DTypeInfo& info(DType d) noexcept { return kInfo[static_cast<std::size_t>(d)]; }

// A binary floating-point format narrower than double: E exponent bits, M mantissa bits.
// `finite_only` is the "fn" flavour: no infinities, only the all-ones pattern is NaN.
struct MiniFloat {
  int exponent_bits;
  int mantissa_bits;
  bool finite_only;

  [[nodiscard]] int bias() const { return (1 << (exponent_bits - 1)) - 1; }
  [[nodiscard]] std::uint32_t sign_bit() const { return 1U << (exponent_bits + mantissa_bits); }
  [[nodiscard]] std::uint32_t exponent_mask() const { return (1U << exponent_bits) - 1; }
  [[nodiscard]] std::uint32_t mantissa_mask() const { return (1U << mantissa_bits) - 1; }
  [[nodiscard]] std::uint32_t nan() const {
    return finite_only ? (exponent_mask() << mantissa_bits) | mantissa_mask()
                       : (exponent_mask() << mantissa_bits) | (1U << (mantissa_bits - 1));
  }
  [[nodiscard]] std::uint32_t max_finite() const {
    return finite_only ? (exponent_mask() << mantissa_bits) | (mantissa_mask() - 1)
                       : ((exponent_mask() - 1) << mantissa_bits) | mantissa_mask();
  }

  [[nodiscard]] std::uint32_t encode(double v) const {
    if (std::isnan(v)) return nan();
    const std::uint32_t sign = std::signbit(v) ? sign_bit() : 0U;
    const double a = std::fabs(v);
    if (std::isinf(a)) return sign | (finite_only ? max_finite() : exponent_mask() << mantissa_bits);
    if (a == 0.0) return sign;
    int e = 0;
    (void)std::frexp(a, &e);
    int unbiased = e - 1;
    const int emin = 1 - bias();
    if (unbiased < emin) unbiased = emin;
    auto q = static_cast<std::uint64_t>(std::nearbyint(std::ldexp(a, mantissa_bits - unbiased)));
    if (q >= (std::uint64_t{1} << (mantissa_bits + 1))) {
      q >>= 1;
      ++unbiased;
    }
    std::uint32_t bits = 0;
    if (q < (std::uint64_t{1} << mantissa_bits)) {
      bits = static_cast<std::uint32_t>(q);  // subnormal (or zero)
    } else {
      const int biased = unbiased + bias();
      const auto mantissa = static_cast<std::uint32_t>(q - (std::uint64_t{1} << mantissa_bits));
      const auto candidate = (static_cast<std::uint32_t>(biased) << mantissa_bits) | mantissa;
      const bool overflow = finite_only ? (biased > static_cast<int>(exponent_mask()) || candidate > max_finite())
                                        : biased >= static_cast<int>(exponent_mask());
      if (overflow) return sign | (finite_only ? max_finite() : exponent_mask() << mantissa_bits);
      bits = candidate;
    }
    return sign | bits;
  }

  [[nodiscard]] double decode(std::uint32_t bits) const {
    const bool negative = (bits & sign_bit()) != 0;
    const std::uint32_t exponent = (bits >> mantissa_bits) & exponent_mask();
    const std::uint32_t mantissa = bits & mantissa_mask();
    double out = 0.0;
    if (finite_only && exponent == exponent_mask() && mantissa == mantissa_mask()) {
      return std::numeric_limits<double>::quiet_NaN();
    }
    if (!finite_only && exponent == exponent_mask()) {
      out = mantissa == 0 ? std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
    } else if (exponent == 0) {
      out = std::ldexp(static_cast<double>(mantissa), 1 - bias() - mantissa_bits);
    } else {
      out = std::ldexp(static_cast<double>(mantissa | (1U << mantissa_bits)),
                       static_cast<int>(exponent) - bias() - mantissa_bits);
    }
    return negative ? -out : out;
  }
};

constexpr MiniFloat kFloat16{5, 10, false};
constexpr MiniFloat kBFloat16{8, 7, false};
constexpr MiniFloat kFloat8E4M3FN{4, 3, true};
constexpr MiniFloat kFloat8E5M2{5, 2, false};

template <class T>
void store(std::span<std::byte> out, T value) noexcept {
  std::memcpy(out.data(), &value, sizeof(T));
}
template <class T>
T load(std::span<const std::byte> in) noexcept {
  T value{};
  std::memcpy(&value, in.data(), sizeof(T));
  return value;
}

std::int64_t to_int64(double v) noexcept {
  if (std::isnan(v)) return 0;
  if (v >= 9.2233720368547758e18) return std::numeric_limits<std::int64_t>::max();
  if (v <= -9.2233720368547758e18) return std::numeric_limits<std::int64_t>::min();
  return static_cast<std::int64_t>(v);
}

}  // namespace

std::string_view dtype_name(DType dtype) noexcept { return info(dtype).name; }

std::optional<DType> dtype_from_name(std::string_view name) noexcept {
  for (DType d : kAllDTypes) {
    if (info(d).name == name) return d;
  }
  return std::nullopt;
}

std::size_t element_size(DType dtype) noexcept { return info(dtype).size; }
DTypeCategory dtype_category(DType dtype) noexcept { return info(dtype).category; }
bool is_floating(DType dtype) noexcept {
  const auto c = dtype_category(dtype);
  return c == DTypeCategory::floating || c == DTypeCategory::complex;
}

void encode_element(DType dtype, double value, std::span<std::byte> out) noexcept {
  switch (dtype) {
    case DType::bool_: store<std::uint8_t>(out, value != 0.0 ? 1 : 0); return;
    case DType::uint8: store(out, static_cast<std::uint8_t>(to_int64(value))); return;
    case DType::int8: store(out, static_cast<std::int8_t>(to_int64(value))); return;
    case DType::int16: store(out, static_cast<std::int16_t>(to_int64(value))); return;
    case DType::int32: store(out, static_cast<std::int32_t>(to_int64(value))); return;
    case DType::int64: store(out, to_int64(value)); return;
    case DType::uint16: store(out, static_cast<std::uint16_t>(to_int64(value))); return;
    case DType::uint32: store(out, static_cast<std::uint32_t>(to_int64(value))); return;
    case DType::uint64: store(out, static_cast<std::uint64_t>(to_int64(value))); return;
    case DType::float16: store(out, static_cast<std::uint16_t>(kFloat16.encode(value))); return;
    case DType::bfloat16: store(out, static_cast<std::uint16_t>(kBFloat16.encode(value))); return;
    case DType::float32: store(out, static_cast<float>(value)); return;
    case DType::float64: store(out, value); return;
    case DType::complex64:
      store(out, static_cast<float>(value));
      store(out.subspan(4), 0.0F);
      return;
    case DType::complex128:
      store(out, value);
      store(out.subspan(8), 0.0);
      return;
    case DType::float8_e4m3fn: store(out, static_cast<std::uint8_t>(kFloat8E4M3FN.encode(value))); return;
    case DType::float8_e5m2: store(out, static_cast<std::uint8_t>(kFloat8E5M2.encode(value))); return;
  }
}

double decode_element(DType dtype, std::span<const std::byte> in) noexcept {
  switch (dtype) {
    case DType::bool_: return load<std::uint8_t>(in) != 0 ? 1.0 : 0.0;
    case DType::uint8: return load<std::uint8_t>(in);
    case DType::int8: return load<std::int8_t>(in);
    case DType::int16: return load<std::int16_t>(in);
    case DType::int32: return load<std::int32_t>(in);
    case DType::int64: return static_cast<double>(load<std::int64_t>(in));
    case DType::uint16: return load<std::uint16_t>(in);
    case DType::uint32: return load<std::uint32_t>(in);
    case DType::uint64: return static_cast<double>(load<std::uint64_t>(in));
    case DType::float16: return kFloat16.decode(load<std::uint16_t>(in));
    case DType::bfloat16: return kBFloat16.decode(load<std::uint16_t>(in));
    case DType::float32: return load<float>(in);
    case DType::float64: return load<double>(in);
    case DType::complex64: return load<float>(in);
    case DType::complex128: return load<double>(in);
    case DType::float8_e4m3fn: return kFloat8E4M3FN.decode(load<std::uint8_t>(in));
    case DType::float8_e5m2: return kFloat8E5M2.decode(load<std::uint8_t>(in));
  }
  return 0.0;
}

std::span<const std::uint64_t> special_bit_patterns(DType dtype) noexcept {
  static constexpr std::uint64_t kFloat16[] = {0xFE01, 0x8000, 0x7C00, 0x7D01, 0xFC00, 0x0001};
  static constexpr std::uint64_t kBFloat16[] = {0xFFC1, 0x8000, 0x7F80, 0x7F81, 0xFF80, 0x0001};
  static constexpr std::uint64_t kFloat32[] = {0xFFC12345, 0x80000000, 0x7F800000, 0x7F812345, 0xFF800000, 0x1};
  static constexpr std::uint64_t kFloat64[] = {0xFFF8000012345678, 0x8000000000000000, 0x7FF0000000000000,
                                               0x7FF000000BADF00D, 0xFFF0000000000000, 0x1};
  static constexpr std::uint64_t kE4M3Fn[] = {0xFF, 0x80, 0x7F, 0x01};
  static constexpr std::uint64_t kE5M2[] = {0xFE, 0x80, 0x7C, 0x7D, 0xFC, 0x01};
  switch (dtype) {
    case DType::float16: return kFloat16;
    case DType::bfloat16: return kBFloat16;
    case DType::float32:
    case DType::complex64: return kFloat32;
    case DType::float64:
    case DType::complex128: return kFloat64;
    case DType::float8_e4m3fn: return kE4M3Fn;
    case DType::float8_e5m2: return kE5M2;
    default: return {};
  }
}

}  // namespace stagekit
