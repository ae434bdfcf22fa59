// The cases of the full profile must bite too: a stager that keeps a storage's byte count in 32 bits
// is caught by stager.storage_over_4_gib, and passes a case whose storages are small. Each case needs
// some 9 GiB of memory, so this test runs in the nightly label only.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_set>

#include "case_outcome.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/case.h"

namespace stagekit::conformance {
namespace {

// Every staged storage whose byte count does not fit 32 bits holds only what a copy of
// (byte count mod 2^32) bytes leaves in a new buffer: the rest is zero.
void keep_low_32_bits_of_each_copy(const Value& staged, std::unordered_set<const void*>& seen) {
  if (staged.is_tensor()) {
    const Storage s = staged.as_tensor().storage();
    if (!s.defined() || !seen.insert(s.identity()).second) return;
    const std::uint64_t n = s.nbytes();
    const std::uint64_t copied = n & 0xFFFFFFFFu;  // the flaw: a uint32_t byte count
    if (copied != n) std::memset(static_cast<std::byte*>(s.data()) + copied, 0, n - copied);
    return;
  }
  if (staged.kind() == Value::Kind::dict) {
    for (const auto& [key, value] : staged.as_dict().entries()) keep_low_32_bits_of_each_copy(value, seen);
  }
}

class ByteCountIn32Bits final : public StagerUnderTest {
 public:
  explicit ByteCountIn32Bits(std::unique_ptr<StagerUnderTest> inner) : inner_(std::move(inner)) {}
  Value stage(const Value& sd) override {
    Value staged = inner_->stage(sd);
    std::unordered_set<const void*> seen;
    keep_low_32_bits_of_each_copy(staged, seen);
    return staged;
  }
  void close() override { inner_->close(); }

 private:
  std::unique_ptr<StagerUnderTest> inner_;
};

class ByteCountIn32BitsImplementation final : public Implementation {
 public:
  ByteCountIn32BitsImplementation() : reference_(make_reference_implementation()) {}
  std::string name() const override { return "mutant-byte-count-in-32-bits"; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override {
    Capabilities c = reference_->capabilities();
    c.non_blocking = false;
    c.cache_stats = false;
    return c;
  }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) override {
    return std::make_unique<ByteCountIn32Bits>(reference_->make_stager(config));
  }

 private:
  std::unique_ptr<Implementation> reference_;
};

TEST(FullProfileMutants, ByteCountKeptIn32Bits) {
  ByteCountIn32BitsImplementation impl;
  EXPECT_EQ(case_outcome(impl, "stager.storage_over_4_gib.cpu.pin0_share0"), Outcome::fail);
  EXPECT_EQ(case_outcome(impl, "stager.large_odd_sizes.cpu.pin0_share0"), Outcome::pass);
}

}  // namespace
}  // namespace stagekit::conformance
