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

namespace {

#if STAGEKIT_STREAMING_SSE2
inline void stream64(unsigned char* d, const unsigned char* s) noexcept {
  const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 16));
  const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 32));
  const __m128i e = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + 48));
  _mm_stream_si128(reinterpret_cast<__m128i*>(d), a);
  _mm_stream_si128(reinterpret_cast<__m128i*>(d + 16), b);
  _mm_stream_si128(reinterpret_cast<__m128i*>(d + 32), c);
  _mm_stream_si128(reinterpret_cast<__m128i*>(d + 48), e);
}
#endif

}  // namespace

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
    // Four pages at a time, interleaved line by line (as glibc does for its largest copies): on 4 KiB
    // pages, streaming one page after the other leaves bandwidth unused.
    constexpr std::size_t kPage = 4096;
    constexpr std::size_t kGroup = 4 * kPage;
    std::size_t done = 0;
    for (; done + kGroup <= n; done += kGroup) {
      for (std::size_t off = 0; off < kPage; off += 64) {
        stream64(d + done + off, s + done + off);
        stream64(d + done + kPage + off, s + done + kPage + off);
        stream64(d + done + 2 * kPage + off, s + done + 2 * kPage + off);
        stream64(d + done + 3 * kPage + off, s + done + 3 * kPage + off);
      }
    }
    for (; done + 64 <= n; done += 64) stream64(d + done, s + done);
    std::memcpy(d + done, s + done, n - done);
    _mm_sfence();  // streaming stores are weakly ordered: make them visible before completion is signalled
    return;
  }
#endif
  std::memcpy(dst, src, n);
}

}  // namespace stagekit::detail
