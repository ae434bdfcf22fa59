// packed_message_test.cpp — the message framing of a packed state dict (what the replication wire
// protocol and broadcast_state_dict receive): its exact bytes, a round trip of every node kind with
// storage sharing, every truncation and bit flip of a head (rejected, or decoded without a crash),
// the error head, and each kind of bad preamble.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cstring>
#include <limits>
#include <string>

#include "replica_test_support.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/packed_message.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate {
namespace {

using testing::copy_storages;
using testing::expect_same_tree;
using testing::LeBytes;

// Every node kind a state dict's entries hold, with views of one storage.
Value sample() {
  const Tensor w = Tensor::random({3, 4}, DType::bfloat16, 5);
  return Value::dict({{"w", Value(w)},
                      {"w_t", Value(w.transpose(0, 1))},
                      {"w_row", Value(w.select(0, 1))},
                      {"step", Value(Tensor::scalar(7.0, DType::float32))},
                      {"empty", Value(Tensor::zeros({0, 3}, DType::int64))},
                      {std::int64_t{3}, Value::list({Value(1), Value(2.5), Value(true), Value(), Value("x")})},
                      {"t", Value::tuple({Value(Bytes{{std::byte{0}, std::byte{255}}})})},
                      {"obj", Value::object("Cfg", {{"lr", Value(0.1)}}, true)}});
}

// What a receiver does with a head: check it, receive the storages (here: copies of the sender's,
// or zero-filled storages of the announced sizes; a head that passed the checks announces the
// sender's sizes, so nothing larger is ever allocated), unpack.
Value receive(std::span<const std::byte> head, std::span<const Storage> sent) {
  const MessageHead checked = read_message_head(head, "test message", 1);
  std::vector<Storage> storages;
  for (std::size_t i = 0; i < checked.storage_sizes.size(); ++i) {
    const auto size = static_cast<std::size_t>(checked.storage_sizes[i]);
    if (i < sent.size() && sent[i].nbytes() == size) {
      storages.push_back(copy_storages(sent.subspan(i, 1)).front());
    } else {
      storages.push_back(Storage::allocate(size));
      std::memset(storages.back().data(), 0, size);
    }
  }
  return unpack_state_dict(checked.manifest, storages);
}

void expect_corrupt_head(std::span<const std::byte> head, std::string_view needle) {
  try {
    (void)read_message_head(head, "test message", 1);
    ADD_FAILURE() << "expected a CorruptionError containing '" << needle << "'";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

// A preamble; body_bytes is the length of what the caller appends.
LeBytes preamble(std::uint64_t body_bytes, std::uint64_t storages = 0, std::uint64_t payload = 0,
                 std::uint32_t status = 0, std::uint16_t major = 1, std::uint16_t minor = kFormatMinor) {
  LeBytes b;
  b.raw("SKRW", 4).u16(major).u16(minor).u32(status).u32(0).u64(body_bytes).u64(storages).u64(payload);
  return b;
}

TEST(PackedMessage, HeadIsThePreambleThenTheManifest) {
  const PackedStateDict packed = pack_state_dict(sample());
  const std::vector<std::byte> head = message_head(packed);
  const auto expected = preamble(packed.manifest.size(), packed.storages.size(), packed.payload_bytes())
                            .raw(packed.manifest.data(), packed.manifest.size())
                            .bytes;
  EXPECT_EQ(head, expected);
  EXPECT_EQ(packed.storages.size(), 3u);  // w and its views; step; empty
}

TEST(PackedMessage, RoundTripsEveryKindWithSharing) {
  const Value in = sample();
  const PackedStateDict packed = pack_state_dict(in);
  const Value out = receive(message_head(packed), packed.storages);
  expect_same_tree(in, out);
  EXPECT_TRUE(out["w_t"].as_tensor().storage().is_alias_of(out["w"].as_tensor().storage()));
  EXPECT_EQ(out["w_row"].as_tensor().storage_offset(), 4);
  EXPECT_TRUE(out["obj"].as_object().frozen());
  EXPECT_EQ(out.as_dict().at(DictKey(std::int64_t{3})).at(4).as_string(), "x");
  // Encoding what was decoded gives the same bytes.
  EXPECT_EQ(pack_state_dict(out).manifest, packed.manifest);
}

TEST(PackedMessage, EveryTruncationIsACorruptionError) {
  const PackedStateDict packed = pack_state_dict(sample());
  const std::vector<std::byte> head = message_head(packed);
  for (std::size_t n = 0; n < head.size(); ++n) {
    EXPECT_THROW((void)read_message_head(std::span(head).first(n), "test message", 1), CorruptionError) << n;
  }
  std::vector<std::byte> longer = head;
  longer.push_back(std::byte{0});
  EXPECT_THROW((void)read_message_head(longer, "test message", 1), CorruptionError);
  // The manifest itself, each prefix announced with its own length, so that the decoder sees it.
  const auto storages = copy_storages(packed.storages);
  for (std::size_t n = 0; n < packed.manifest.size(); ++n) {
    EXPECT_THROW((void)unpack_state_dict(std::span(packed.manifest).first(n), storages), CorruptionError) << n;
  }
  // And a byte after the root node.
  std::vector<std::byte> trailing = packed.manifest;
  trailing.push_back(std::byte{0});
  auto with_trailing = preamble(trailing.size(), packed.storages.size(), packed.payload_bytes())
                           .raw(trailing.data(), trailing.size())
                           .bytes;
  try {
    (void)receive(with_trailing, packed.storages);
    ADD_FAILURE() << "a byte after the root node was accepted";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("1 byte(s) after the root node"), std::string::npos) << e.what();
  }
}

TEST(PackedMessage, BitFlipsAreRejectedOrDecode) {
  const PackedStateDict packed = pack_state_dict(sample());
  const std::vector<std::byte> head = message_head(packed);
  std::size_t rejected = 0;
  for (std::size_t i = 0; i < head.size(); ++i) {
    for (const std::uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<std::byte> bad = head;
      bad[i] ^= std::byte{mask};
      try {
        (void)receive(bad, packed.storages);  // some flips only change a value: that decodes
      } catch (const CorruptionError&) {
        ++rejected;
      } catch (const CommunicationError&) {
        ++rejected;  // the status flipped to "error": the manifest read as the reason
      }
    }
  }
  EXPECT_GT(rejected, head.size());
}

TEST(PackedMessage, ErrorHeadCarriesTheReason) {
  const std::vector<std::byte> head = error_message_head("model.lock: cannot pack a value of opaque type 'Lock'");
  EXPECT_EQ(message_body_bytes(head, "test message", 3), head.size() - kPreambleBytes);
  try {
    (void)read_message_head(head, "test message", 3);
    FAIL() << "an error head was read as a state dict";
  } catch (const CommunicationError& e) {
    EXPECT_EQ(std::string(e.what()),
              "rank 3 sent no state dict: model.lock: cannot pack a value of opaque type 'Lock'");
  }
}

TEST(PackedMessage, BadPreambles) {
  const auto manifest = LeBytes().manifest_header({}).u8(0).bytes;  // a root "none", no storages
  auto with = [&](LeBytes p) { return p.raw(manifest.data(), manifest.size()).bytes; };
  EXPECT_NO_THROW((void)read_message_head(with(preamble(manifest.size())), "test message", 1));
  expect_corrupt_head(std::vector<std::byte>(39), "test message from rank 1: a 39-byte message head is shorter");
  auto bad_magic = with(preamble(manifest.size()));
  bad_magic[3] = std::byte{'X'};
  expect_corrupt_head(bad_magic, "bad magic");
  expect_corrupt_head(with(preamble(manifest.size(), 0, 0, 0, 2, 0)), "format version 2.0, this reader reads 1.x");
  expect_corrupt_head(with(preamble(manifest.size(), 0, 0, 0, 1, kFormatMinor + 1)),
                      fmt::format("format version 1.{} is newer", kFormatMinor + 1));
  expect_corrupt_head(with(preamble(manifest.size(), 0, 0, 2)), "unknown status 2");
  auto reserved = with(preamble(manifest.size()));
  reserved[12] = std::byte{1};
  expect_corrupt_head(reserved, "reserved bytes");
  expect_corrupt_head(with(preamble(manifest.size() + 1)), "announces");
  expect_corrupt_head(with(preamble(manifest.size(), 1, 0)),
                      "announces 1 storages of 0 bytes but the manifest lists 0");
  expect_corrupt_head(with(preamble(manifest.size(), 0, 8)), "announces 0 storages of 8 bytes");
  // Storage sizes whose sum does not fit 64 bits.
  const auto huge = LeBytes().manifest_header({~std::uint64_t{0}, 2}).u8(0).bytes;
  expect_corrupt_head(preamble(huge.size(), 2, 1).raw(huge.data(), huge.size()).bytes, "more than 2^64 bytes");
  // A body length no buffer can hold is refused from the preamble alone.
  try {
    (void)message_body_bytes(preamble(std::numeric_limits<std::uint64_t>::max()).bytes, "test message", 1);
    ADD_FAILURE() << "a body of 2^64-1 bytes was announced";
  } catch (const CorruptionError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot be held"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace stagekit::replicate
