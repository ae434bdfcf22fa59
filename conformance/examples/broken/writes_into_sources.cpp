// writes_into_sources.cpp — BROKEN: the sources are left as they were. Floating-point sources are
// "cleaned" in place before they are copied: every NaN in the caller's tensors becomes the canonical
// quiet NaN and -0.0 becomes +0.0. The staged dict then equals the sources byte for byte, so a check
// that compares the two after staging passes; the caller's state dict is no longer what it was.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class WritesIntoSources final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    if (source.storage().defined() && source.device().is_cpu() &&
        dtype_category(source.dtype()) == DTypeCategory::floating) {
      clean(source.storage(), source.dtype());
    }
    return MinimalStager::stage_tensor(source);
  }

 private:
  // Every element of the source storage, read as `dtype` (the views of one storage share their
  // dtype here), rewritten only where cleaning changes its bits.
  static void clean(const Storage& storage, DType dtype) {
    auto* bytes = static_cast<std::byte*>(storage.data());
    if (bytes == nullptr) return;
    if (dtype == DType::float32) return clean_words<std::uint32_t>(bytes, storage.nbytes(), 0x7fc00000u);
    if (dtype == DType::float64) return clean_words<std::uint64_t>(bytes, storage.nbytes(), 0x7ff8000000000000ull);
    const std::size_t item = element_size(dtype);
    for (std::size_t at = 0; at + item <= storage.nbytes(); at += item) {
      const std::span<std::byte> element(bytes + at, item);
      const double value = decode_element(dtype, element);
      if (std::isnan(value)) encode_element(dtype, std::numeric_limits<double>::quiet_NaN(), element);
      if (value == 0.0 && std::signbit(value)) encode_element(dtype, 0.0, element);
    }
  }

  // IEEE binary32/binary64 words: every NaN becomes `quiet_nan`, -0.0 becomes +0.0.
  template <class Word>
  static void clean_words(std::byte* bytes, std::size_t nbytes, Word quiet_nan) {
    constexpr Word sign = Word{1} << (sizeof(Word) * 8 - 1);
    for (std::size_t at = 0; at + sizeof(Word) <= nbytes; at += sizeof(Word)) {
      Word w;
      std::memcpy(&w, bytes + at, sizeof w);
      Word cleaned = w;
      if (w == sign) {
        cleaned = 0;
      } else if (is_nan(w)) {
        cleaned = quiet_nan;
      }
      if (cleaned != w) std::memcpy(bytes + at, &cleaned, sizeof cleaned);
    }
  }

  template <class Word>
  static bool is_nan(Word w) {
    if constexpr (sizeof(Word) == 4) {
      return (w & 0x7f800000u) == 0x7f800000u && (w & 0x007fffffu) != 0;
    } else {
      return (w & 0x7ff0000000000000ull) == 0x7ff0000000000000ull && (w & 0x000fffffffffffffull) != 0;
    }
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<WritesIntoSources>("example-broken-writes-into-sources");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
