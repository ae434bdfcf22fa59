#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "stagekit/core/dtype.h"

namespace stagekit {
namespace {

template <class T>
T bits_of(DType d, double v) {
  std::byte buf[16] = {};
  encode_element(d, v, {buf, element_size(d)});
  T out{};
  std::memcpy(&out, buf, sizeof(T));
  return out;
}

double roundtrip(DType d, double v) {
  std::byte buf[16] = {};
  encode_element(d, v, {buf, element_size(d)});
  return decode_element(d, {buf, element_size(d)});
}

TEST(DType, NamesAndSizesMatchPyTorch) {
  EXPECT_EQ(kAllDTypes.size(), 17U);
  for (DType d : kAllDTypes) {
    ASSERT_EQ(dtype_from_name(dtype_name(d)), d);
  }
  EXPECT_EQ(dtype_name(DType::bool_), "bool");
  EXPECT_EQ(dtype_name(DType::float8_e4m3fn), "float8_e4m3fn");
  EXPECT_EQ(element_size(DType::complex128), 16U);
  EXPECT_EQ(element_size(DType::bfloat16), 2U);
  EXPECT_EQ(element_size(DType::float8_e5m2), 1U);
  EXPECT_FALSE(dtype_from_name("float128").has_value());
}

TEST(DType, Float16BitPatterns) {
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, 1.0), 0x3C00);
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, -2.0), 0xC000);
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, 65504.0), 0x7BFF);
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, 1e6), 0x7C00);                         // overflow to +inf
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, std::ldexp(1.0, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, 1.0 + std::ldexp(1.0, -11)), 0x3C00);  // tie to even
  EXPECT_EQ(bits_of<std::uint16_t>(DType::float16, 1.0 + 3 * std::ldexp(1.0, -11)), 0x3C02);
  EXPECT_TRUE(std::isnan(roundtrip(DType::float16, NAN)));
}

TEST(DType, BFloat16AndFloat8BitPatterns) {
  EXPECT_EQ(bits_of<std::uint16_t>(DType::bfloat16, 1.0), 0x3F80);
  EXPECT_EQ(bits_of<std::uint16_t>(DType::bfloat16, -0.5), 0xBF00);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e4m3fn, 1.0), 0x38);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e4m3fn, 448.0), 0x7E);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e4m3fn, 1000.0), 0x7E);  // saturates
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e4m3fn, NAN), 0x7F);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e5m2, 1.0), 0x3C);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e5m2, 57344.0), 0x7B);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::float8_e5m2, 1e9), 0x7C);                              // +inf
  EXPECT_DOUBLE_EQ(roundtrip(DType::float8_e4m3fn, std::ldexp(1.0, -9)), std::ldexp(1.0, -9));  // subnormal
}

TEST(DType, IntegersBoolAndComplex) {
  EXPECT_EQ(bits_of<std::int8_t>(DType::int8, -100.0), -100);
  EXPECT_EQ(bits_of<std::uint8_t>(DType::uint8, 300.0), 44);  // wraps like a C cast
  EXPECT_EQ(bits_of<std::uint8_t>(DType::bool_, -3.0), 1);
  EXPECT_EQ(bits_of<std::int64_t>(DType::int64, -7.9), -7);
  EXPECT_DOUBLE_EQ(roundtrip(DType::complex64, 42.0), 42.0);
  EXPECT_DOUBLE_EQ(roundtrip(DType::uint64, 12345.0), 12345.0);
}

}  // namespace
}  // namespace stagekit
