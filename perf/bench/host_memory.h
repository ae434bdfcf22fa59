// Raw host-memory helpers for the limit benchmarks: fresh mappings of each memory kind, prefaulting,
// page-locking, and a memcpy split over N threads the way the stager splits its host copies.
#pragma once

#include <cstddef>

namespace stagekit::perf {

// An owned mapping; munmap (and close) on destruction.
class Mapping {
 public:
  Mapping() = default;
  Mapping(void* data, std::size_t nbytes, int fd) : data_(data), nbytes_(nbytes), fd_(fd) {}
  Mapping(Mapping&& other) noexcept;
  Mapping& operator=(Mapping&& other) noexcept;
  ~Mapping();
  [[nodiscard]] void* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t nbytes() const noexcept { return nbytes_; }

 private:
  void* data_ = nullptr;
  std::size_t nbytes_ = 0;
  int fd_ = -1;
};

// Anonymous private memory, not yet touched; transparent huge pages advised or refused.
[[nodiscard]] Mapping map_private(std::size_t nbytes, bool huge_pages);
// A memfd with its space reserved, mapped shared.
[[nodiscard]] Mapping map_shared(std::size_t nbytes);
// Page-locks a mapping (raw system call, so that sanitizer builds lock too). Throws on failure.
void lock(const Mapping& m);
// Touches every page.
void prefault(const Mapping& m);
// Copies n bytes split into `threads` contiguous parts, one per thread (the caller runs one).
void parallel_memcpy(void* dst, const void* src, std::size_t n, std::size_t threads);

}  // namespace stagekit::perf
