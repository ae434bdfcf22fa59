// replica_file_test.cpp — the replica file's layout and verification: round trips in memory and on
// disk, ReplicaInfo, and rejection of every single-byte change and every truncation of a valid file.
#include <gtest/gtest.h>

#include <fstream>

#include <fmt/format.h>

#include "replica_test_support.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/replica_file.h"

namespace stagekit::replicate {
namespace {

using testing::expect_same_tree;
using testing::TempDir;

std::string corruption_message(std::span<const std::byte> bytes) {
  try {
    (void)decode_replica(bytes);
  } catch (const CorruptionError& e) {
    return e.what();
  }
  return "(accepted)";
}

void write_bytes(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

std::uint64_t read_u64(std::span<const std::byte> bytes, std::size_t offset) {
  std::uint64_t v = 0;
  std::memcpy(&v, bytes.data() + offset, 8);
  return v;
}

TEST(ReplicaFile, RoundTripInMemoryAndOnDisk) {
  const Value v = testing::small_state_dict();
  const PackedStateDict packed = pack_state_dict(v);
  ReplicaWriteOptions options;
  options.source_rank = 3;
  options.holder_rank = 5;
  const std::vector<std::byte> bytes = encode_replica(packed, options);
  ReplicaInfo info;
  expect_same_tree(v, decode_replica(bytes, &info));
  EXPECT_EQ(info.version_major, kFormatMajor);
  EXPECT_EQ(info.version_minor, kFormatMinor);
  EXPECT_EQ(info.source_rank, 3);
  EXPECT_EQ(info.holder_rank, 5);
  EXPECT_EQ(info.file_bytes, bytes.size());
  EXPECT_EQ(info.manifest_bytes, packed.manifest.size());
  EXPECT_EQ(info.payload_bytes, packed.payload_bytes());
  EXPECT_EQ(info.storages, packed.storages.size());

  TempDir dir;
  const auto path = dir / "replica.bin";
  EXPECT_EQ(write_replica(path, packed, options), bytes.size());
  ReplicaInfo loaded_info;
  expect_same_tree(v, load_replica(path, &loaded_info));
  EXPECT_EQ(loaded_info.file_bytes, info.file_bytes);
  const ReplicaInfo inspected = inspect_replica(path);
  EXPECT_EQ(inspected.payload_bytes, info.payload_bytes);
  EXPECT_EQ(inspected.source_rank, 3);
  // The file on disk is exactly the encoded bytes.
  std::ifstream in(path, std::ios::binary);
  std::vector<char> disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(disk.size(), bytes.size());
  EXPECT_EQ(std::memcmp(disk.data(), bytes.data(), bytes.size()), 0);
}

TEST(ReplicaFile, BlobsAreAlignedAndPaddedWithZeros) {
  const PackedStateDict packed = pack_state_dict(testing::small_state_dict());
  const std::vector<std::byte> bytes = encode_replica(packed);
  const std::uint64_t table_offset = read_u64(bytes, 48);
  ASSERT_EQ(read_u64(bytes, 56), packed.storages.size());
  EXPECT_EQ(table_offset % 8, 0U);
  for (std::size_t i = 0; i < packed.storages.size(); ++i) {
    const std::uint64_t offset = read_u64(bytes, table_offset + 24 * i);
    EXPECT_EQ(offset % kBlobAlignment, 0U) << i;
    EXPECT_EQ(read_u64(bytes, table_offset + 24 * i + 8), packed.storages[i].nbytes()) << i;
    if (packed.storages[i].nbytes() > 0) {
      EXPECT_EQ(std::memcmp(bytes.data() + offset, packed.storages[i].data(), packed.storages[i].nbytes()), 0) << i;
    }
  }
}

TEST(ReplicaFile, EmptyAndTensorlessStateDicts) {
  for (const Value& v : {Value::dict(), Value::list({Value(1), Value("x")}), Value()}) {
    const std::vector<std::byte> bytes = encode_replica(pack_state_dict(v));
    expect_same_tree(v, decode_replica(bytes));
  }
}

TEST(ReplicaFile, EverySingleByteChangeIsRejected) {
  const std::vector<std::byte> good = encode_replica(pack_state_dict(testing::small_state_dict()), {1, 0, true});
  ASSERT_EQ(good.size(), 3 * kBlobAlignment);  // blobs at 4096, 8192 and a zero-byte one at 12288
  std::vector<std::byte> bad = good;
  for (std::size_t i = 0; i < good.size(); ++i) {
    for (const std::uint8_t mask : {0x01, 0xff}) {
      bad[i] = good[i] ^ std::byte{mask};
      EXPECT_THROW((void)decode_replica(bad), CorruptionError) << "byte " << i << " ^ " << int{mask};
      bad[i] = good[i];
    }
  }
}

TEST(ReplicaFile, EveryTruncationIsRejected) {
  const std::vector<std::byte> good = encode_replica(pack_state_dict(testing::small_state_dict()));
  for (std::size_t n = 0; n < good.size(); ++n) {
    EXPECT_THROW((void)decode_replica(std::span(good).first(n)), CorruptionError) << n;
  }
  EXPECT_EQ(corruption_message(std::span(good).first(1000)),
            fmt::format("truncated: 1000 bytes, header says {}", good.size()));
  EXPECT_EQ(corruption_message(std::span(good).first(100)), "truncated: 100 bytes, shorter than the 128-byte header");
  std::vector<std::byte> longer = good;
  longer.push_back(std::byte{0});
  EXPECT_NE(corruption_message(longer).find("1 trailing byte(s)"), std::string::npos);
}

TEST(ReplicaFile, ErrorsNameThePartAndOffset) {
  const PackedStateDict packed = pack_state_dict(testing::small_state_dict());
  const std::vector<std::byte> good = encode_replica(packed);
  const std::uint64_t table_offset = read_u64(good, 48);
  auto changed = [&](std::size_t at) {
    std::vector<std::byte> bad = good;
    bad[at] ^= std::byte{0x10};
    return corruption_message(bad);
  };
  EXPECT_NE(changed(0).find("header at offset 0: bad magic"), std::string::npos) << changed(0);
  EXPECT_NE(changed(20).find("header at offset 120: checksum mismatch"), std::string::npos) << changed(20);
  EXPECT_NE(changed(130).find("manifest at offset 128: checksum mismatch"), std::string::npos) << changed(130);
  EXPECT_NE(changed(table_offset + 3).find(fmt::format("table at offset {}: checksum mismatch", table_offset)),
            std::string::npos);
  const std::uint64_t blob1 = read_u64(good, table_offset + 24);
  EXPECT_EQ(changed(blob1 + 5).rfind(fmt::format("blob 1 at offset {}: checksum mismatch", blob1), 0), 0U)
      << changed(blob1 + 5);
  EXPECT_NE(changed(blob1 - 1).find(fmt::format("padding at offset {}", blob1 - 1)), std::string::npos);

  std::vector<std::byte> major = good;
  major[8] = std::byte{2};
  EXPECT_EQ(corruption_message(major),
            fmt::format("header at offset 8: format version 2.{}, this reader reads 1.x", kFormatMinor));
  std::vector<std::byte> minor = good;
  minor[10] = std::byte{7};
  EXPECT_NE(corruption_message(minor).find("format version 1.7 is newer"), std::string::npos);
}

TEST(ReplicaFile, LoadNamesTheFile) {
  TempDir dir;
  try {
    (void)load_replica(dir / "missing.bin");
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("missing.bin"), std::string::npos) << e.what();
  }
  EXPECT_THROW((void)inspect_replica(dir / "missing.bin"), IoError);
  std::vector<std::byte> bytes = encode_replica(pack_state_dict(testing::small_state_dict()));
  bytes[kBlobAlignment + 1] ^= std::byte{1};  // inside blob 0
  write_bytes(dir / "bad.bin", bytes);
  try {
    (void)load_replica(dir / "bad.bin");
    FAIL() << "expected CorruptionError";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.bin: blob 0 at offset 4096: checksum mismatch"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW((void)inspect_replica(dir / "bad.bin"), CorruptionError);
  bytes.resize(bytes.size() - 1);
  write_bytes(dir / "short.bin", bytes);
  EXPECT_THROW((void)load_replica(dir / "short.bin"), CorruptionError);
  EXPECT_THROW((void)inspect_replica(dir / "short.bin"), CorruptionError);
}

TEST(ReplicaFile, LargeStoragesCrossChunkBoundaries) {
  // 20 MiB: more than two of the writer's and reader's 8 MiB chunks, with a partial last chunk.
  const Tensor big = Tensor::random({5 * 1024 * 1024 + 3}, DType::float32, 42);
  const Value v = Value::dict({{"big", Value(big)}, {"view", Value(big.slice(0, 7, 5 * 1024 * 1024, 2))}});
  TempDir dir;
  write_replica(dir / "big.bin", pack_state_dict(v));
  expect_same_tree(v, load_replica(dir / "big.bin"));
  EXPECT_EQ(inspect_replica(dir / "big.bin").payload_bytes, big.storage().nbytes());
}

}  // namespace
}  // namespace stagekit::replicate
