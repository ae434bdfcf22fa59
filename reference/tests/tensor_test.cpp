#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <utility>
#include <vector>

#include "stagekit/core/dtype.h"
#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"

namespace stagekit {
namespace {

std::vector<std::int64_t> v(std::span<const std::int64_t> s) { return {s.begin(), s.end()}; }

TEST(Tensor, ContiguousFactoriesAndElements) {
  Tensor t = Tensor::arange(12, DType::float32).view({3, 4});
  EXPECT_EQ(v(t.sizes()), (std::vector<std::int64_t>{3, 4}));
  EXPECT_EQ(v(t.strides()), (std::vector<std::int64_t>{4, 1}));
  EXPECT_EQ(t.numel(), 12);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_DOUBLE_EQ(t.item({2, 3}), 11.0);
  EXPECT_EQ(t.storage().nbytes(), 48U);
  Tensor s = Tensor::scalar(2.5, DType::float64);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_DOUBLE_EQ(s.item(), 2.5);
}

// The meta device: sizes, strides and dtype without data. The fills do nothing there, to(meta)
// keeps the layout only, and every read or write of elements is an error naming the meta device.
TEST(Tensor, MetaTensorsHaveALayoutAndNoData) {
  EXPECT_EQ(Device::meta().str(), "meta");
  Tensor m = Tensor::zeros({3, 4}, DType::float32, Device::meta());
  EXPECT_TRUE(m.device().is_meta());
  EXPECT_EQ(m.storage().nbytes(), 48U);
  EXPECT_EQ(m.storage().data(), nullptr);
  EXPECT_EQ(v(m.strides()), (std::vector<std::int64_t>{4, 1}));
  const Tensor host = Tensor::arange(12, DType::float32).view({3, 4});
  const Tensor on_meta = host.to(Device::meta());
  EXPECT_TRUE(on_meta.device().is_meta());
  EXPECT_EQ(v(on_meta.sizes()), v(host.sizes()));
  for (const auto& [what, op] : std::vector<std::pair<const char*, std::function<void()>>>{
           {"to(cpu)", [&] { (void)m.to(Device::cpu()); }},
           {"copy_ into", [&] { m.copy_(host); }},
           {"copy_ from", [&] { Tensor(host.clone()).copy_(m); }},
           {"item",
            [&] {
              (void)m.item({0, 0});
            }},
           {"to_bytes", [&] { (void)m.to_bytes(); }},
           {"equal", [&] { (void)Tensor::equal(m, on_meta); }},
           {"resize", [&] {
              Storage s = m.storage();
              s.resize(8);
            }}}) {
    try {
      op();
      ADD_FAILURE() << what << ": no error";
    } catch (const InvalidArgument& e) {
      EXPECT_NE(std::string(e.what()).find("meta"), std::string::npos) << what << ": " << e.what();
    }
  }
}

TEST(Tensor, ViewsShareStorageWithTheirOwnLayout) {
  const Tensor base = Tensor::arange(100, DType::float32).view({10, 10});
  const Tensor slice1 = base.slice(0, 2, 8).slice(1, 2, 8);
  EXPECT_TRUE(slice1.storage().is_alias_of(base.storage()));
  EXPECT_EQ(slice1.storage_offset(), 22);
  EXPECT_EQ(v(slice1.sizes()), (std::vector<std::int64_t>{6, 6}));
  EXPECT_DOUBLE_EQ(slice1.item({0, 0}), 22.0);
  const Tensor stepped = base.slice(1, 1, 10, 3);
  EXPECT_EQ(v(stepped.strides()), (std::vector<std::int64_t>{10, 3}));
  EXPECT_EQ(v(stepped.sizes()), (std::vector<std::int64_t>{10, 3}));
  EXPECT_DOUBLE_EQ(stepped.item({1, 2}), 17.0);
  const Tensor tr = base.transpose(0, 1);
  EXPECT_FALSE(tr.is_contiguous());
  EXPECT_DOUBLE_EQ(tr.item({3, 1}), 13.0);
  const Tensor ex = base.select(0, 4).view({1, 10}).expand({5, 10});
  EXPECT_EQ(v(ex.strides()), (std::vector<std::int64_t>{0, 1}));
  EXPECT_DOUBLE_EQ(ex.item({4, 9}), 49.0);
  EXPECT_EQ(base.narrow(0, 0, 2).storage_offset(), 0);
  EXPECT_THROW((void)tr.view({100}), InvalidArgument);
  EXPECT_THROW((void)base.narrow(0, 8, 3), InvalidArgument);
}

TEST(Tensor, OutOfBoundsLayoutsAreRejected) {
  const Storage s = Storage::allocate(64);
  EXPECT_NO_THROW((void)Tensor::from_storage(s, DType::float32, {4, 4}, {4, 1}, 0));
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float32, {4, 4}, {4, 1}, 1), InvalidArgument);
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float32, {4, 4}, {5, 1}, 0), InvalidArgument);
  EXPECT_THROW((void)Tensor::from_storage(Storage(), DType::float32, {2}, {1}, 0), InvalidArgument);
  EXPECT_NO_THROW((void)Tensor::from_storage(Storage(), DType::float32, {0, 3}, {3, 1}, 0));
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float32, {2}, {-1}, 0), InvalidArgument);
}

TEST(Tensor, LayoutsWhoseRangeOverflowsAreRejectedNotWrapped) {
  const Storage s = Storage::allocate(64);
  constexpr std::int64_t kHuge = INT64_MAX;
  // One dimension: (size-1)*stride overflows 64 bits.
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float64, {kHuge}, {kHuge}, 0), InvalidArgument);
  // The element count fits, but the end byte (last element + 1) * item size overflows 128 bits.
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float64, {std::int64_t{1} << 62}, {kHuge}, 0), InvalidArgument);
  // Many dimensions: the sum of reaches overflows even 128 bits, and so does the element count.
  EXPECT_THROW((void)Tensor::from_storage(s, DType::float64, {kHuge, kHuge, kHuge, kHuge, kHuge},
                                          {kHuge, kHuge, kHuge, kHuge, kHuge}, kHuge),
               InvalidArgument);
  // A zero dimension empties the tensor whatever the other dimensions say.
  EXPECT_NO_THROW((void)Tensor::from_storage(Storage(), DType::float64, {kHuge, kHuge, 0}, {kHuge, kHuge, 1}, 0));
}

TEST(Tensor, EqualityIsBytewiseAndNaNAware) {
  Tensor a = Tensor::empty({4}, DType::float32);
  a.random_bytes_(7);
  Tensor b = a.clone();
  EXPECT_TRUE(Tensor::equal(a, b));
  const std::uint32_t nan1 = 0x7FC00001U;
  const std::uint32_t nan2 = 0x7FC00002U;
  std::memcpy(a.data_ptr(), &nan1, 4);
  std::memcpy(b.data_ptr(), &nan1, 4);
  EXPECT_TRUE(Tensor::equal(a, b));  // identical NaN payloads are equal
  std::memcpy(b.data_ptr(), &nan2, 4);
  EXPECT_FALSE(Tensor::equal(a, b));  // different payloads are not
  EXPECT_FALSE(Tensor::equal(a, a.view({2, 2})));
}

std::uint64_t element_bits(const Tensor& t, std::int64_t index, std::size_t offset = 0, std::size_t bytes = 0) {
  const std::vector<std::byte> all = t.to_bytes();
  std::uint64_t bits = 0;
  std::memcpy(&bits, all.data() + static_cast<std::size_t>(index) * t.element_size() + offset,
              bytes == 0 ? t.element_size() : bytes);
  return bits;
}

TEST(Tensor, RandomFloatsHoldTheSpecialBitPatterns) {
  for (const DType dtype : {DType::float32, DType::float64, DType::bfloat16, DType::float16, DType::float8_e5m2}) {
    const Tensor values = Tensor::random({4, 4}, dtype, 1);
    Tensor bytes = Tensor::empty({4, 4}, dtype);
    bytes.random_bytes_(1);
    for (const Tensor& t : {values, bytes}) {
      EXPECT_EQ(element_bits(t, 3), special_bit_patterns(dtype)[0]) << dtype_name(dtype) << ": a NaN with a payload";
      EXPECT_EQ(element_bits(t, 10), special_bit_patterns(dtype)[1]) << dtype_name(dtype) << ": -0.0";
      EXPECT_TRUE(std::isnan(t.item({0, 3}))) << dtype_name(dtype);
    }
  }
  const Tensor c = Tensor::random({11}, DType::complex64, 2);
  EXPECT_EQ(element_bits(c, 3, 0, 4), 0xFFC12345U) << "the real part: a negative NaN with a payload";
  EXPECT_EQ(element_bits(c, 3, 4, 4), 0x80000000U) << "the imaginary part: -0.0";
  EXPECT_EQ(element_bits(c, 10, 0, 4), 0x80000000U);
  const Tensor ints = Tensor::random({16}, DType::int32, 1);
  EXPECT_TRUE(special_bit_patterns(DType::int32).empty());
  for (std::int64_t i = 0; i < 16; ++i) EXPECT_LT(std::abs(ints.item({i})), 101.0) << "integers are left alone";
  for (const DType dtype : kAllDTypes) {
    for (const std::uint64_t bits : special_bit_patterns(dtype)) {
      const std::size_t width = element_size(dtype) / (dtype_category(dtype) == DTypeCategory::complex ? 2 : 1);
      EXPECT_TRUE(width == 8 || bits >> (8 * width) == 0) << dtype_name(dtype) << " pattern wider than an element";
    }
  }
}

TEST(Tensor, RandomIsDeterministicAndFillRespectsStrides) {
  EXPECT_TRUE(Tensor::equal(Tensor::random({3, 3}, DType::bfloat16, 5), Tensor::random({3, 3}, DType::bfloat16, 5)));
  EXPECT_FALSE(Tensor::equal(Tensor::random({3, 3}, DType::int32, 5), Tensor::random({3, 3}, DType::int32, 6)));
  Tensor base = Tensor::zeros({4, 4}, DType::int16);
  Tensor(base.transpose(0, 1).select(0, 2)).fill_(9);
  EXPECT_DOUBLE_EQ(base.item({1, 2}), 9.0);
  EXPECT_DOUBLE_EQ(base.item({2, 1}), 0.0);
  Tensor boolean = Tensor::empty({64}, DType::bool_);
  boolean.random_bytes_(3);
  for (std::byte byte : boolean.to_bytes()) EXPECT_LE(static_cast<unsigned>(byte), 1U);
}

TEST(Tensor, AttributesBelongToTheTensorObject) {
  Tensor t = Tensor::zeros({2}, DType::float32);
  Tensor same = t;
  t.set_attr("a", 42);
  EXPECT_TRUE(same.has_attr("a"));
  EXPECT_EQ(same.attr("a").as_int(), 42);
  Tensor view = t.view({2});
  EXPECT_FALSE(view.has_attr("a"));
  t.set_attr("a", 7);
  EXPECT_EQ(t.attrs().size(), 1U);
  EXPECT_THROW((void)t.attr("missing"), InvalidArgument);
}

}  // namespace
}  // namespace stagekit
