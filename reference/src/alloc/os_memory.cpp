#include "os_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit::detail {
namespace {

std::string errno_text(int err) { return fmt::format("{} (errno {})", std::strerror(err), err); }

std::uint64_t rlimit_current(int resource) {
  rlimit rl{};
  if (getrlimit(resource, &rl) != 0) return RLIM_INFINITY;
  return rl.rlim_cur;
}

std::uint64_t read_kib_field(const char* file, const char* field) noexcept {
  std::ifstream in(file);
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      std::istringstream fields(line.substr(n + 1));
      std::uint64_t kib = 0;
      fields >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

[[noreturn]] void throw_host_exhausted(std::size_t nbytes, const char* purpose, const char* call, int err) {
  throw ResourceExhausted(
      fmt::format("cannot allocate {} of {}: {} failed: {}. Limits: RLIMIT_AS {}, RLIMIT_DATA {}; MemAvailable {}. "
                  "Free host memory, raise the limits (`ulimit -v`, `ulimit -d`, the memory cgroup) or stage a "
                  "smaller state dict.",
                  format_bytes(nbytes), purpose, call, errno_text(err), format_limit(rlimit_current(RLIMIT_AS)),
                  format_limit(rlimit_current(RLIMIT_DATA)), format_bytes(available_memory_bytes())));
}

// Raises the soft RLIMIT_NOFILE to the hard limit once; returns true if it grew.
bool raise_open_file_limit() noexcept {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return false;
  rl.rlim_cur = rl.rlim_max;
  return setrlimit(RLIMIT_NOFILE, &rl) == 0;
}

}  // namespace

std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

std::string format_bytes(std::uint64_t n) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  if (u == 0) return fmt::format("{} bytes", n);
  return fmt::format("{:.1f} {} ({} bytes)", v, units[u], n);
}

std::string format_limit(std::uint64_t n) { return n == RLIM_INFINITY ? std::string("unlimited") : format_bytes(n); }

void* map_anonymous(std::size_t nbytes, const char* purpose) {
  void* p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw_host_exhausted(nbytes, purpose, "mmap", errno);
  if (nbytes >= kHugePageSize) (void)madvise(p, nbytes, MADV_HUGEPAGE);
  return p;
}

SharedMapping map_shared_memfd(std::size_t nbytes, const char* purpose) {
  int fd = memfd_create("stagekit-shared", MFD_CLOEXEC);
  if (fd < 0 && errno == EMFILE && raise_open_file_limit()) fd = memfd_create("stagekit-shared", MFD_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    throw ResourceExhausted(
        fmt::format("cannot create shared memory for {} of {}: memfd_create failed: {}. Open files limit "
                    "(RLIMIT_NOFILE) is {}; raise it (`ulimit -n`) or stage with share_memory=false.",
                    format_bytes(nbytes), purpose, errno_text(err), rlimit_current(RLIMIT_NOFILE)));
  }
  auto fail = [&](const char* call, int err, const std::string& advice) {
    close(fd);
    throw ResourceExhausted(fmt::format("cannot allocate {} of {}: {} on a memfd failed: {}. {}", format_bytes(nbytes),
                                        purpose, call, errno_text(err), advice));
  };
  const auto size = static_cast<off_t>(nbytes);
  if (ftruncate(fd, size) != 0) {
    const int err = errno;
    fail("ftruncate", err,
         err == EFBIG ? fmt::format("The file-size limit RLIMIT_FSIZE is {}; raise it (`ulimit -f`) or "
                                    "stage with share_memory=false.",
                                    format_limit(rlimit_current(RLIMIT_FSIZE)))
                      : std::string("Stage with share_memory=false or free shared memory."));
  }
  if (fallocate(fd, 0, 0, size) != 0) {
    const int err = errno;
    if (err != EOPNOTSUPP) {
      fail("fallocate", err,
           err == EFBIG ? fmt::format("The file-size limit RLIMIT_FSIZE is {}; raise it (`ulimit -f`).",
                                      format_limit(rlimit_current(RLIMIT_FSIZE)))
                        : fmt::format("Shared memory is exhausted (MemAvailable {}); free shared memory, "
                                      "raise the memory cgroup limit or stage with share_memory=false.",
                                      format_bytes(available_memory_bytes())));
    }
  }
  void* p = mmap(nullptr, nbytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    const int err = errno;
    fail("mmap", err,
         fmt::format("RLIMIT_AS is {}; MemAvailable {}.", format_limit(rlimit_current(RLIMIT_AS)),
                     format_bytes(available_memory_bytes())));
  }
  if (nbytes >= kHugePageSize) (void)madvise(p, nbytes, MADV_HUGEPAGE);
  return {fd, p};
}

void unmap(void* data, std::size_t nbytes) noexcept {
  if (data != nullptr && nbytes > 0) munmap(data, nbytes);
}

void lock_pages(void* data, std::size_t nbytes, const char* purpose) {
  // The raw system call: sanitizer runtimes replace mlock() with a no-op, which would leave "pinned"
  // memory pageable in sanitizer builds.
  if (syscall(SYS_mlock, data, nbytes) == 0) return;
  const int err = errno;
  throw ResourceExhausted(
      fmt::format("cannot page-lock {} of {}: mlock failed: {}. RLIMIT_MEMLOCK is {} and this process already has "
                  "{} locked. Raise the limit (`ulimit -l`, LimitMEMLOCK= for a systemd service, `memlock` in "
                  "/etc/security/limits.conf, `--ulimit memlock=-1` for a container), grant CAP_IPC_LOCK, or stage "
                  "with pin_memory=false.",
                  format_bytes(nbytes), purpose, errno_text(err), format_limit(rlimit_current(RLIMIT_MEMLOCK)),
                  format_bytes(locked_bytes_of_this_process())));
}

std::uint64_t locked_bytes_of_this_process() noexcept { return read_kib_field("/proc/self/status", "VmLck"); }
std::uint64_t available_memory_bytes() noexcept { return read_kib_field("/proc/meminfo", "MemAvailable"); }

}  // namespace stagekit::detail
