// The value codec: every kind round-trips exactly; every truncation and corruption of a valid
// encoding is a CorruptionError (never a crash, never a wrong value); unsupported kinds name the path.
#include <gtest/gtest.h>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/value_codec.h"

namespace stagekit::dist {
namespace {

Value sample() {
  return Value::dict({{"w", Value(Tensor::random({3, 4}, DType::bfloat16, 5))},
                      {"step", Value(Tensor::scalar(7.0, DType::float32))},
                      {"empty", Value(Tensor::zeros({0, 3}, DType::int64))},
                      {std::int64_t{3}, Value::list({Value(1), Value(2.5), Value(true), Value(), Value("x")})},
                      {"t", Value::tuple({Value(Bytes{{std::byte{0}, std::byte{255}}})})},
                      {"obj", Value::object("Cfg", {{"lr", Value(0.1)}}, true)}});
}

TEST(ValueCodec, RoundTripsEveryKind) {
  const Value in = sample();
  const Value out = decode_value(encode_value(in));
  EXPECT_TRUE(Tensor::equal(out["w"].as_tensor(), in["w"].as_tensor()));
  EXPECT_TRUE(Tensor::equal(out["step"].as_tensor(), in["step"].as_tensor()));
  EXPECT_EQ(out["empty"].as_tensor().sizes()[1], 3);
  const Value list = out.as_dict().at(DictKey(std::int64_t{3}));
  EXPECT_EQ(list.at(0).as_int(), 1);
  EXPECT_EQ(list.at(1).as_double(), 2.5);
  EXPECT_TRUE(list.at(2).as_bool());
  EXPECT_TRUE(list.at(3).is_none());
  EXPECT_EQ(list.at(4).as_string(), "x");
  EXPECT_EQ(out["t"].kind(), Value::Kind::tuple);
  EXPECT_EQ(out["t"].at(0).as_bytes(), (Bytes{{std::byte{0}, std::byte{255}}}));
  EXPECT_TRUE(out["obj"].as_object().frozen());
  EXPECT_EQ(out["obj"]["lr"].as_double(), 0.1);
  EXPECT_EQ(encode_value(out), encode_value(in));
}

TEST(ValueCodec, EveryTruncationIsACorruptionError) {
  const auto bytes = encode_value(sample());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    EXPECT_THROW((void)decode_value(std::span(bytes.data(), n)), CorruptionError) << "prefix of " << n << " bytes";
  }
  auto longer = bytes;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)decode_value(longer), CorruptionError);
}

TEST(ValueCodec, CorruptedBytesNeverCrash) {
  const auto bytes = encode_value(sample());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (std::byte flip : {std::byte{0x01}, std::byte{0x80}, std::byte{0xff}}) {
      auto bad = bytes;
      bad[i] ^= flip;
      try {
        (void)decode_value(bad);  // some flips only change a value: that decodes
      } catch (const CorruptionError&) {
      } catch (const InvalidArgument&) {  // e.g. a decoded tensor shape the core refuses
      }
    }
  }
}

TEST(ValueCodec, UnsupportedKindsNameThePath) {
  const auto dt = DTensor::distribute(Tensor::zeros({2, 2}, DType::float32), DeviceMesh::one_d(DeviceType::cpu, 1),
                                      {Placement::shard(0)}, 0);
  try {
    (void)encode_value(Value::dict({{"model", Value::dict({{"w", Value(dt)}})}}));
    FAIL() << "a DTensor was encoded";
  } catch (const Unsupported& e) {
    EXPECT_EQ(e.path(), "model.w");
  }
}

}  // namespace
}  // namespace stagekit::dist
