// byte_io.cpp — the little-endian ByteWriter and the bounds-checked ByteReader.
#include "byte_io.h"

#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit::replicate::detail {

void ByteWriter::raw(const void* data, std::size_t n) {
  if (n == 0) return;
  const auto* b = static_cast<const std::byte*>(data);
  out_.insert(out_.end(), b, b + n);
}

void ByteWriter::i64_list(std::span<const std::int64_t> values) {
  u64(values.size());
  raw(values.data(), values.size_bytes());
}

void ByteWriter::text(std::string_view s) {
  u64(s.size());
  raw(s.data(), s.size());
}

void ByteWriter::patch_u64(std::size_t offset, std::uint64_t v) {
  if (offset > out_.size() || out_.size() - offset < sizeof v) {
    throw InternalError(fmt::format("ByteWriter::patch_u64 at {} past the end {}", offset, out_.size()));
  }
  std::memcpy(out_.data() + offset, &v, sizeof v);
}

void ByteReader::fail_at(std::size_t at, std::string_view detail) const {
  throw CorruptionError(fmt::format("{} at offset {}: {}", what_, base_ + at, detail));
}

void ByteReader::need(std::uint64_t n, std::string_view field) const {
  if (n > remaining()) {
    fail(fmt::format("truncated: {} needs {} byte(s), {} left", field, n, remaining()));
  }
}

bool ByteReader::boolean(std::string_view field) {
  const std::size_t at = at_;
  const std::uint8_t v = u8(field);
  if (v > 1) fail_at(at, fmt::format("{} is {}, expected 0 or 1", field, v));
  return v == 1;
}

std::uint64_t ByteReader::count(std::string_view field, std::uint64_t min_item_bytes) {
  const std::size_t at = at_;
  const std::uint64_t n = u64(field);
  if (min_item_bytes == 0) min_item_bytes = 1;
  if (n > remaining() / min_item_bytes) {
    fail_at(at, fmt::format("{} {} cannot fit in the {} byte(s) left", field, n, remaining()));
  }
  return n;
}

std::vector<std::int64_t> ByteReader::i64_list(std::string_view field) {
  const std::uint64_t n = count(field, sizeof(std::int64_t));
  std::vector<std::int64_t> out(n);
  if (n > 0) std::memcpy(out.data(), in_.data() + at_, n * sizeof(std::int64_t));
  at_ += n * sizeof(std::int64_t);
  return out;
}

std::string ByteReader::text(std::string_view field) {
  const std::uint64_t n = count(field, 1);
  const auto s = take(n, field);
  return {reinterpret_cast<const char*>(s.data()), s.size()};
}

std::span<const std::byte> ByteReader::take(std::uint64_t n, std::string_view field) {
  need(n, field);
  auto s = in_.subspan(at_, n);
  at_ += n;
  return s;
}

}  // namespace stagekit::replicate::detail
