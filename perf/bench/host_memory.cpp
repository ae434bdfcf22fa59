#include "host_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace stagekit::perf {
namespace {
[[noreturn]] void fail(const char* what) { throw std::runtime_error(std::string(what) + ": " + std::strerror(errno)); }
}  // namespace

Mapping::Mapping(Mapping&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      nbytes_(std::exchange(other.nbytes_, 0)),
      fd_(std::exchange(other.fd_, -1)) {}

Mapping& Mapping::operator=(Mapping&& other) noexcept {
  Mapping tmp(std::move(other));
  std::swap(data_, tmp.data_);
  std::swap(nbytes_, tmp.nbytes_);
  std::swap(fd_, tmp.fd_);
  return *this;
}

Mapping::~Mapping() {
  if (data_ != nullptr) munmap(data_, nbytes_);
  if (fd_ >= 0) close(fd_);
}

Mapping map_private(std::size_t nbytes, bool huge_pages) {
  void* p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) fail("mmap");
  (void)madvise(p, nbytes, huge_pages ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
  return {p, nbytes, -1};
}

Mapping map_shared(std::size_t nbytes) {
  const int fd = memfd_create("stagekit-bench", MFD_CLOEXEC);
  if (fd < 0) fail("memfd_create");
  if (ftruncate(fd, static_cast<off_t>(nbytes)) != 0 || fallocate(fd, 0, 0, static_cast<off_t>(nbytes)) != 0) {
    close(fd);
    fail("ftruncate/fallocate");
  }
  void* p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    close(fd);
    fail("mmap");
  }
  return {p, nbytes, fd};
}

void lock(const Mapping& m) {
  if (syscall(SYS_mlock, m.data(), m.nbytes()) != 0) fail("mlock");
}

void prefault(const Mapping& m) { std::memset(m.data(), 1, m.nbytes()); }

void parallel_memcpy(void* dst, const void* src, std::size_t n, std::size_t threads) {
  if (threads <= 1 || n < threads) {
    std::memcpy(dst, src, n);
    return;
  }
  auto* d = static_cast<std::byte*>(dst);
  const auto* s = static_cast<const std::byte*>(src);
  std::vector<std::thread> workers;
  workers.reserve(threads - 1);
  for (std::size_t t = 1; t < threads; ++t) {
    const std::size_t begin = n * t / threads;
    const std::size_t end = n * (t + 1) / threads;
    workers.emplace_back([=] { std::memcpy(d + begin, s + begin, end - begin); });
  }
  std::memcpy(d, s, n / threads);
  for (auto& w : workers) w.join();
}

}  // namespace stagekit::perf
