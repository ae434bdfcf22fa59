// manifest_corruption_test.cpp — unpack_state_dict() on malformed manifests: every truncation and
// byte change of a real manifest is either rejected with a CorruptionError or decodes (never a
// crash), and hand-made manifests with each kind of bad field are rejected naming the offset.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include "replica_test_support.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate {
namespace {

using testing::copy_storages;
using testing::LeBytes;

constexpr std::uint8_t kTensor = 6;
constexpr std::uint8_t kList = 7;
constexpr std::uint8_t kDict = 9;
constexpr std::uint8_t kReference = 13;
constexpr std::uint8_t kReferable = 0x80;

// Expects a CorruptionError whose message contains `needle`.
void expect_corrupt(std::span<const std::byte> manifest, std::span<const Storage> storages, std::string_view needle) {
  try {
    (void)unpack_state_dict(manifest, storages);
    ADD_FAILURE() << "expected a CorruptionError containing '" << needle << "'";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// A float32 tensor node of `n` elements on storage `id`, contiguous.
LeBytes& tensor_node(LeBytes& b, std::int64_t n, std::uint64_t id, std::uint8_t tag = kTensor) {
  return b.u8(tag).u8(11).u64(1).i64(n).i64(1).i64(0).u64(id).u64(0);
}

TEST(ManifestCorruption, EveryTruncationIsRejected) {
  const PackedStateDict packed = pack_state_dict(testing::small_state_dict());
  const auto storages = copy_storages(packed.storages);
  for (std::size_t n = 0; n < packed.manifest.size(); ++n) {
    EXPECT_THROW((void)unpack_state_dict(std::span(packed.manifest).first(n), storages), CorruptionError) << n;
  }
}

TEST(ManifestCorruption, EveryByteChangeIsRejectedOrHarmless) {
  const PackedStateDict packed = pack_state_dict(testing::small_state_dict());
  const auto storages = copy_storages(packed.storages);
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < packed.manifest.size(); ++i) {
    for (const std::uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<std::byte> bad = packed.manifest;
      bad[i] ^= std::byte{mask};
      try {
        (void)unpack_state_dict(bad, storages);
      } catch (const CorruptionError&) {
        ++rejected;
      } catch (const InvalidArgument&) {
        ++rejected;  // a changed storage table no longer matches the storages given
      }
    }
  }
  EXPECT_GT(rejected, packed.manifest.size());
}

TEST(ManifestCorruption, BadHeader) {
  expect_corrupt(LeBytes().raw("SKMX", 4).u16(1).u16(0).u64(0).u8(0).bytes, {}, "bad magic");
  expect_corrupt(LeBytes().manifest_header({}, 2, 0).u8(0).bytes, {}, "format version 2.0, this reader reads 1.x");
  expect_corrupt(LeBytes().manifest_header({}, 1, kFormatMinor + 1).u8(0).bytes, {},
                 fmt::format("format version 1.{} is newer", kFormatMinor + 1));
  expect_corrupt(LeBytes().manifest_header({}).u64(~std::uint64_t{0}).bytes, {}, "manifest at offset");
  // A huge storage count is refused before anything is allocated for it.
  expect_corrupt(LeBytes().raw("SKMF", 4).u16(1).u16(0).u64(std::uint64_t{1} << 60).bytes, {}, "storage count");
  EXPECT_THROW((void)manifest_storage_sizes(LeBytes().raw("SKMF", 4).u16(1).u16(0).u64(3).u64(1).bytes),
               CorruptionError);
}

TEST(ManifestCorruption, BadNodes) {
  expect_corrupt(LeBytes().manifest_header({}).u8(0x3f).bytes, {}, "unknown node tag");
  expect_corrupt(LeBytes().manifest_header({}).u8(2 | kReferable).i64(1).bytes, {}, "cannot be referable");
  expect_corrupt(LeBytes().manifest_header({}).u8(1).u8(2).bytes, {}, "expected 0 or 1");
  expect_corrupt(LeBytes().manifest_header({}).u8(0).u8(0).bytes, {}, "1 byte(s) after the root node");
  expect_corrupt(LeBytes().manifest_header({}).u8(4).u64(100).raw("abc", 3).bytes, {}, "string");
  expect_corrupt(LeBytes().manifest_header({}).u8(kList).u64(~std::uint64_t{0}).bytes, {}, "item count");
  expect_corrupt(LeBytes().manifest_header({}).u8(kDict).u64(2).u8(0).text("k").u8(0).u8(0).text("k").u8(0).bytes, {},
                 "key k appears twice");
  expect_corrupt(LeBytes().manifest_header({}).u8(kDict).u64(1).u8(7).i64(1).u8(0).bytes, {}, "key kind 7");
  expect_corrupt(LeBytes().manifest_header({}).u8(10).text("T").u8(1).u64(2).text("f").u8(0).text("f").u8(0).bytes, {},
                 "field 'f' appears twice");
  // Format 1.1 kinds: a namedtuple with a repeated field, a set holding a list or an item twice, a
  // frozen flag that is not 0 or 1.
  expect_corrupt(LeBytes().manifest_header({}).u8(15).text("P").u64(2).text("x").u8(0).text("x").u8(0).bytes, {},
                 "namedtuple: namedtuple P has field 'x' twice");
  expect_corrupt(LeBytes().manifest_header({}).u8(16).u8(0).u64(1).u8(kList).u64(0).bytes, {},
                 "set: a set cannot hold a list value");
  expect_corrupt(LeBytes().manifest_header({}).u8(16).u8(1).u64(2).u8(2).i64(4).u8(2).i64(4).bytes, {},
                 "set item #1 repeats item #0");
  expect_corrupt(LeBytes().manifest_header({}).u8(16).u8(2).u64(0).bytes, {}, "expected 0 or 1");
  expect_corrupt(LeBytes().manifest_header({}).u8(14).text("collections.OrderedDict").u64(1).u8(9).i64(0).u8(0).bytes,
                 {}, "key kind 9");
}

TEST(ManifestCorruption, ErrorsNameThePathReached) {
  const auto m =
      LeBytes().manifest_header({}).u8(kDict).u64(1).u8(0).text("layer").u8(kList).u64(2).u8(0).u8(0x55).bytes;
  try {
    (void)unpack_state_dict(m, {});
    FAIL() << "expected CorruptionError";
  } catch (const CorruptionError& e) {
    EXPECT_EQ(e.path(), "layer[1]");
    EXPECT_NE(std::string(e.what()).find("manifest at offset 49: unknown node tag 0x55"), std::string::npos)
        << e.what();
  }
}

TEST(ManifestCorruption, BadTensors) {
  const std::vector<Storage> one{Storage::allocate(16)};
  LeBytes fits;
  tensor_node(fits.manifest_header({16}), 4, 0);
  EXPECT_NO_THROW((void)unpack_state_dict(fits.bytes, one));
  LeBytes too_big;
  tensor_node(too_big.manifest_header({16}), 5, 0);
  expect_corrupt(too_big.bytes, one, "manifest at offset 24: tensor on storage 0: invalid tensor layout");
  LeBytes bad_id;
  tensor_node(bad_id.manifest_header({16}), 4, 1);
  expect_corrupt(bad_id.bytes, one, "storage id 1 out of range");
  expect_corrupt(LeBytes().manifest_header({16}).u8(kTensor).u8(17).bytes, one, "17 is not a dtype");
  expect_corrupt(LeBytes().manifest_header({16}).u8(kTensor).u8(11).u64(1).i64(-1).i64(1).i64(0).u64(0).u64(0).bytes,
                 one, "negative size");
  expect_corrupt(LeBytes()
                     .manifest_header({16})
                     .u8(kTensor)
                     .u8(11)
                     .u64(1)
                     .i64(std::int64_t{1} << 62)
                     .i64(1 << 30)
                     .i64(0)
                     .u64(0)
                     .u64(0)
                     .bytes,
                 one, "invalid tensor layout");
  // Found by the fuzzer: an element count that fits 64 bits whose end byte overflows 128 bits.
  expect_corrupt(LeBytes()
                     .manifest_header({16})
                     .u8(kTensor)
                     .u8(11)
                     .u64(1)
                     .i64(INT64_MAX)
                     .i64(INT64_MAX)
                     .i64(0)
                     .u64(0)
                     .u64(0)
                     .bytes,
                 one, "the addressed range overflows");
  // Several dimensions whose reaches add up far past 64 bits.
  LeBytes wide = LeBytes().manifest_header({16}).u8(kTensor).u8(11).u64(4);
  for (int d = 0; d < 4; ++d) wide.i64(2);
  for (int d = 0; d < 4; ++d) wide.i64(INT64_MAX);
  expect_corrupt(wide.i64(INT64_MAX).u64(0).u64(0).bytes, one, "invalid tensor layout");
  expect_corrupt(LeBytes().manifest_header({16}).u8(kTensor).u8(11).u64(std::uint64_t{1} << 40).bytes, one,
                 "dimension count");
  LeBytes attrs;
  tensor_node(attrs.manifest_header({16}), 4, 0);
  attrs.bytes.resize(attrs.bytes.size() - 8);
  attrs.u64(2).text("a").u8(0).text("a").u8(0);
  expect_corrupt(attrs.bytes, one, "attribute 'a' appears twice");
}

TEST(ManifestCorruption, BackReferences) {
  const std::vector<Storage> one{Storage::allocate(16)};
  LeBytes good;
  tensor_node(good.manifest_header({16}).u8(kList).u64(2), 4, 0, kTensor | kReferable).u8(kReference).u64(0);
  const Value v = unpack_state_dict(good.bytes, one);
  EXPECT_TRUE(v.at(0).as_tensor().is_same(v.at(1).as_tensor()));
  expect_corrupt(LeBytes().manifest_header({}).u8(kList).u64(1).u8(kReference).u64(0).bytes, {},
                 "back-reference to node 0, but only 0");
  expect_corrupt(LeBytes().manifest_header({}).u8(kList | kReferable).u64(1).u8(kReference).u64(0).bytes, {},
                 "which contains it (a cycle)");
  expect_corrupt(LeBytes().manifest_header({}).u8(kReference | kReferable).u64(0).bytes, {}, "cannot be referable");
  // A DTensor's local tensor must be a tensor.
  LeBytes dtensor;
  dtensor.manifest_header({}).u8(11).u8(0).u64(1).i64(1).u64(1).i32(0).u64(1).u8(1).i64(0).u64(0).u64(0).i32(0).u8(0);
  expect_corrupt(dtensor.bytes, {}, "expected a tensor");
}

TEST(ManifestCorruption, BadDistributedMetadata) {
  // A mesh whose shape needs more ranks than it lists, and a shape whose product overflows.
  expect_corrupt(LeBytes().manifest_header({}).u8(11).u8(0).u64(1).i64(2).u64(1).i32(0).bytes, {}, "does not match");
  expect_corrupt(LeBytes()
                     .manifest_header({})
                     .u8(11)
                     .u8(0)
                     .u64(2)
                     .i64(std::int64_t{1} << 40)
                     .i64(std::int64_t{1} << 40)
                     .u64(1)
                     .i32(0)
                     .bytes,
                 {}, "does not match");
  expect_corrupt(LeBytes().manifest_header({}).u8(11).u8(5).bytes, {}, "not a device type");
  // Duplicate mesh ranks come back from DeviceMesh as a CorruptionError.
  expect_corrupt(LeBytes().manifest_header({}).u8(11).u8(0).u64(1).i64(2).u64(2).i32(0).i32(0).bytes, {},
                 "appears twice in the device mesh");
  // Sharded tensor: shard offsets beyond 2^62 are refused before any arithmetic.
  expect_corrupt(LeBytes()
                     .manifest_header({})
                     .u8(12)
                     .i32(0)
                     .u8(11)
                     .u64(1)
                     .i64(4)
                     .u64(1)
                     .u64(1)
                     .i64(-1)
                     .u64(0)
                     .i32(0)
                     .u8(0)
                     .i32(0)
                     .u8(0)
                     .bytes,
                 {}, "outside [0, 2^62)");
  // A local shard that does not fit the global size.
  LeBytes sharded;
  sharded.manifest_header({16}).u8(12).i32(0).u8(11).u64(1).i64(2).u64(0).u64(1);
  sharded.u64(1).i64(0).u64(1).i64(4).i32(0).u8(0).i32(0);
  tensor_node(sharded, 4, 0);
  expect_corrupt(sharded.bytes, std::vector<Storage>{Storage::allocate(16)}, "sharded tensor: local shard 0");
}

TEST(ManifestCorruption, NestingIsLimited) {
  LeBytes deep;
  deep.manifest_header({});
  for (int i = 0; i < 100000; ++i) deep.u8(kList).u64(1);
  deep.u8(0);
  expect_corrupt(deep.bytes, {}, "nested deeper than 1000");
}

}  // namespace
}  // namespace stagekit::replicate
