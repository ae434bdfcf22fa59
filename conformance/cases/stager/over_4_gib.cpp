// A storage over 4 GiB (profile full): its byte count, and offsets into it, do not fit 32 bits. A
// stager that keeps either in an int or a uint32_t (a copy length, an allocation size, a view's
// offset) stages every other case exactly and this one wrongly. The case needs some 9 GiB of memory
// (the source, the staged copy, the expected bytes with CUDA sources) and a minute, so it is in the
// full profile, which the nightly run uses, not in every run.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr std::uint64_t k4GiB = std::uint64_t{1} << 32;
constexpr std::uint64_t kOver4GiBBytes = k4GiB + 3;
constexpr std::int64_t kTailOffset = static_cast<std::int64_t>(k4GiB) - 1;  // a view from below 4 GiB to past it

// Where a byte count or an offset kept in 32 bits (signed or not) goes wrong: the bytes around 2 GiB
// and 4 GiB and the last one. Every other byte is zero (pages never written).
constexpr std::array<std::uint64_t, 7> kOver4GiBMarks = {0,     (k4GiB / 2) - 1, k4GiB / 2, k4GiB - 1,
                                                         k4GiB, k4GiB + 1,       k4GiB + 2};

void mark_over_4_gib(Tensor& bytes, std::uint8_t first) {
  auto* p = static_cast<std::uint8_t*>(bytes.storage().data());
  for (std::size_t i = 0; i < kOver4GiBMarks.size(); ++i) p[kOver4GiBMarks[i]] = static_cast<std::uint8_t>(first + i);
}

// The first and last byte where `staged` differs from `expected` (both kOver4GiBBytes long), compared
// in blocks of 64 MiB; nullopt when they are equal.
struct Over4GiBDifference {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};
std::optional<Over4GiBDifference> over_4_gib_difference(const std::uint8_t* staged, const std::uint8_t* expected) {
  constexpr std::uint64_t kBlock = std::uint64_t{64} << 20;
  std::optional<Over4GiBDifference> d;
  for (std::uint64_t at = 0; at < kOver4GiBBytes; at += kBlock) {
    const std::uint64_t n = std::min(kBlock, kOver4GiBBytes - at);
    if (std::memcmp(staged + at, expected + at, n) == 0) continue;
    for (std::uint64_t i = at; i < at + n; ++i) {
      if (staged[i] == expected[i]) continue;
      if (!d) d = Over4GiBDifference{i, i};
      d->last = i;
    }
  }
  return d;
}

void check_over_4_gib_bytes(CaseContext& ctx, const Tensor& staged, const Tensor& expected, std::string_view when) {
  const auto* s = static_cast<const std::uint8_t*>(staged.storage().data());
  const auto* e = static_cast<const std::uint8_t*>(expected.storage().data());
  if (const auto d = over_4_gib_difference(s, e)) {
    ctx.check(false, "embedding", "storage bytes",
              fmt::format("{}: the staged storage of {} bytes differs from the source from byte {} (0x{:02x} staged, "
                          "0x{:02x} in the source) to byte {}: a byte count or offset kept in 32 bits?",
                          when, kOver4GiBBytes, d->first, s[d->first], e[d->first], d->last));
  }
}

void storage_over_4_gib_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  Tensor expected = Tensor::zeros({static_cast<std::int64_t>(kOver4GiBBytes)}, DType::uint8);
  mark_over_4_gib(expected, 0x11);
  Tensor source = dev.is_cpu() ? expected : expected.to(dev);
  const Value sd = Value::dict({{"embedding", source}, {"tail", source.narrow(0, kTailOffset, 4)}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, sd, "a storage over 4 GiB");
  const Tensor d = staged["embedding"].as_tensor();
  const Tensor tail = staged["tail"].as_tensor();
  ctx.require(d.device().is_cpu() && d.storage().defined() && d.storage().nbytes() == kOver4GiBBytes, "embedding",
              "storage size",
              fmt::format("the staged storage holds {} bytes on {}, the source {} bytes",
                          d.storage().defined() ? d.storage().nbytes() : 0, d.device().str(), kOver4GiBBytes));
  ctx.check(
      d.sizes().size() == 1 && d.sizes()[0] == static_cast<std::int64_t>(kOver4GiBBytes) && d.storage_offset() == 0,
      "embedding", "layout",
      fmt::format("staged with {} dimension(s), offset {}", d.sizes().size(), d.storage_offset()));
  ctx.check(tail.storage().is_alias_of(d.storage()) && tail.storage_offset() == kTailOffset &&
                tail.sizes().size() == 1 && tail.sizes()[0] == 4,
            "tail", "offset past 4 GiB",
            fmt::format("the view from byte {} is staged at offset {}{}", kTailOffset, tail.storage_offset(),
                        tail.storage().is_alias_of(d.storage()) ? "" : ", on a storage of its own"));
  check_over_4_gib_bytes(ctx, d, expected, "cold");
  ctx.add_failures(verify_memory_kinds(staged, memory_expectation(cfg)));

  // Into the cached buffer: the marks changed in the source, the rest as it was.
  mark_over_4_gib(expected, 0x71);
  if (!dev.is_cpu()) source.copy_(expected);
  const Value again = stage_or_fail(ctx, *stager, sd, "the storage over 4 GiB again");
  check_over_4_gib_bytes(ctx, again["embedding"].as_tensor(), expected, "re-staged into the cached buffer");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(over_4_gib) {
  static constexpr PinShare kPlainAndPinnedShared[] = {PinShare{false, false}, PinShare{true, true}};
  add_matrix(registry, "storage_over_4_gib",
             "A storage of 4 GiB + 3 bytes and a view of it from byte 2^32 - 1 stage byte-exact at full size and "
             "offset, cold and into the cached buffer: no byte count or offset is kept in 32 bits (full profile: "
             "some 9 GiB of memory)",
             "strict", Profile::full, kBothSources, kPlainAndPinnedShared, storage_over_4_gib_case);
}

}  // namespace stagekit::conformance
