// replica_test_support.h — helpers shared by the replica format tests: a deep tree comparison that
// also checks identity and storage sharing, sample state dicts, a little-endian byte builder for
// hand-made manifests, and a temporary directory.
#pragma once

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/core/storage.h"
#include "stagekit/core/value.h"

namespace stagekit::replicate::testing {

// Fails the current test (naming the path) unless `actual` is `expected` rebuilt exactly: same
// kinds, bit-identical scalars, same keys in order, same tensor layouts and bytes, same attributes,
// objects, DTensor specs and ShardedTensor metadata; and the same shape of identity: two places
// hold the same node (or storage) in `actual` exactly when they do in `expected`.
void expect_same_tree(const Value& expected, const Value& actual);

// Fresh host storages holding the same bytes (what a receiver or a file reader would have).
[[nodiscard]] std::vector<Storage> copy_storages(std::span<const Storage> storages);

// A small state dict with tensors, views, a zero-byte storage, attributes and containers.
[[nodiscard]] Value small_state_dict();

// A little-endian byte builder for hand-made manifests and files.
class LeBytes {
 public:
  LeBytes& u8(std::uint8_t v) { return raw(&v, 1); }
  LeBytes& u16(std::uint16_t v) { return raw(&v, 2); }
  LeBytes& u32(std::uint32_t v) { return raw(&v, 4); }
  LeBytes& i32(std::int32_t v) { return raw(&v, 4); }
  LeBytes& u64(std::uint64_t v) { return raw(&v, 8); }
  LeBytes& i64(std::int64_t v) { return raw(&v, 8); }
  LeBytes& text(std::string_view s) {
    u64(s.size());
    return raw(s.data(), s.size());
  }
  LeBytes& raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  // The manifest header: magic "SKMF", version, storage sizes.
  LeBytes& manifest_header(const std::vector<std::uint64_t>& sizes, std::uint16_t major = 1, std::uint16_t minor = 0) {
    raw("SKMF", 4).u16(major).u16(minor).u64(sizes.size());
    for (std::uint64_t s : sizes) u64(s);
    return *this;
  }
  std::vector<std::byte> bytes;
};

// A fresh directory under the system temporary directory, removed with its contents.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }
  [[nodiscard]] std::filesystem::path operator/(std::string_view name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

}  // namespace stagekit::replicate::testing
