#include "streaming_copy.h"

#include <cstdint>
#include <cstring>

#if defined(__x86_64__) || defined(__SSE2__)
#include <emmintrin.h>
#define STAGEKIT_STREAMING_SSE2 1
#else
#define STAGEKIT_STREAMING_SSE2 0
#endif

namespace stagekit::detail {

void streaming_copy(void* dst, const void* src, std::size_t n) noexcept {
#if STAGEKIT_STREAMING_SSE2
  if (n >= kStreamingCopyMinBytes) {
    auto* d = static_cast<unsigned char*>(dst);
    const auto* s = static_cast<const unsigned char*>(src);
    // Align the destination to 16 bytes with an ordinary copy of the head.
    const std::size_t head = (16 - (reinterpret_cast<std::uintptr_t>(d) & 15U)) & 15U;
    std::memcpy(d, s, head);
    d += head;
    s += head;
    n -= head;
    const std::size_t blocks = n / 64;
    for (std::size_t i = 0; i < blocks; ++i) {
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
      const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
      const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
      const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
      _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
      _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
      d += 64;
      s += 64;
    }
    std::memcpy(d, s, n - blocks * 64);
    _mm_sfence();  // streaming stores are weakly ordered: make them visible before completion is signalled
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

}  // namespace stagekit::detail
