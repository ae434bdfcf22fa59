// byte_io.h — little-endian ByteWriter (appends to a byte vector) and ByteReader (a bounds-checked
// cursor over a byte span) for the replica format: the only reader and writer of its bytes
// (manifest, message preamble, replica file).
//
// Every ByteReader read is checked against the end of its span; a read past it, or a count larger
// than what is left, throws CorruptionError("<what> at offset N: ...") where <what> names the part
// being read ("manifest", "header", "table") and N is the offset of the failed read. Offsets are
// reported relative to the start of the span plus `base_offset`, so that a reader over a part of a
// file can report file offsets.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace stagekit::replicate::detail {

static_assert(std::endian::native == std::endian::little, "the replica format assumes a little-endian host");

class ByteWriter {
 public:
  void u8(std::uint8_t v) { raw(&v, sizeof v); }
  void u16(std::uint16_t v) { raw(&v, sizeof v); }
  void u32(std::uint32_t v) { raw(&v, sizeof v); }
  void i32(std::int32_t v) { raw(&v, sizeof v); }
  void u64(std::uint64_t v) { raw(&v, sizeof v); }
  void i64(std::int64_t v) { raw(&v, sizeof v); }
  void f64(double v) { raw(&v, sizeof v); }             // the bit pattern: NaN payloads and -0.0 survive
  void i64_list(std::span<const std::int64_t> values);  // u64 count, then the values
  void text(std::string_view s);                        // u64 length, then the bytes
  void zeros(std::size_t n) { out_.resize(out_.size() + n); }
  void raw(const void* data, std::size_t n);
  // Overwrites 8 bytes at `offset` (which must already be written).
  void patch_u64(std::size_t offset, std::uint64_t v);

  [[nodiscard]] std::size_t size() const noexcept { return out_.size(); }
  [[nodiscard]] std::vector<std::byte>& bytes() noexcept { return out_; }

 private:
  std::vector<std::byte> out_;
};

class ByteReader {
 public:
  ByteReader(std::span<const std::byte> in, std::string_view what, std::uint64_t base_offset = 0) noexcept
      : in_(in), what_(what), base_(base_offset) {}

  std::uint8_t u8(std::string_view field) { return fixed<std::uint8_t>(field); }
  std::uint16_t u16(std::string_view field) { return fixed<std::uint16_t>(field); }
  std::uint32_t u32(std::string_view field) { return fixed<std::uint32_t>(field); }
  std::int32_t i32(std::string_view field) { return fixed<std::int32_t>(field); }
  std::uint64_t u64(std::string_view field) { return fixed<std::uint64_t>(field); }
  std::int64_t i64(std::string_view field) { return fixed<std::int64_t>(field); }
  double f64(std::string_view field) { return fixed<double>(field); }
  // A bool stored as one byte that must be 0 or 1.
  bool boolean(std::string_view field);
  // A count of items that each take at least `min_item_bytes` bytes: bounded by what is left.
  std::uint64_t count(std::string_view field, std::uint64_t min_item_bytes);
  std::vector<std::int64_t> i64_list(std::string_view field);
  std::string text(std::string_view field);
  std::span<const std::byte> take(std::uint64_t n, std::string_view field);

  // Throws CorruptionError("<what> at offset <at>: <detail>").
  [[noreturn]] void fail_at(std::size_t at, std::string_view detail) const;
  [[noreturn]] void fail(std::string_view detail) const { fail_at(at_, detail); }

  [[nodiscard]] std::size_t position() const noexcept { return at_; }  // relative to the span
  [[nodiscard]] std::uint64_t offset() const noexcept { return base_ + at_; }
  [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - at_; }
  [[nodiscard]] bool at_end() const noexcept { return at_ == in_.size(); }

 private:
  void need(std::uint64_t n, std::string_view field) const;
  template <class T>
  T fixed(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }

  std::span<const std::byte> in_;
  std::string_view what_;
  std::uint64_t base_;
  std::size_t at_ = 0;
};

}  // namespace stagekit::replicate::detail
