#include "stagekit/testing/memory_probe.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include <fmt/format.h>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/testing/child_process.h"

namespace stagekit::probe {
namespace {

bool is_named_shared(const Mapping& m) {
  if (!m.is_shared()) return false;
  if (m.path.empty() || m.path.rfind("/dev/zero", 0) == 0 || m.path.rfind('[', 0) == 0) return false;
  return true;
}

bool starts_with(const std::string& s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }
bool ends_with(const std::string& s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// How another process can reach the object a named shared mapping maps, or nullopt when none can.
std::optional<std::string> reachable_by(const Mapping& m, const MemoryMap& map) {
  if (starts_with(m.path, "/SYSV")) return "its SysV segment id";
  if (!starts_with(m.path, "/memfd:") && !ends_with(m.path, " (deleted)")) {
    struct stat st {};
    if (stat(m.path.c_str(), &st) == 0 && major(st.st_dev) == m.dev_major && minor(st.st_dev) == m.dev_minor &&
        st.st_ino == m.inode)
      return "its name";
  }
  const int fd = map.descriptor_of(m);
  if (fd >= 0) return fmt::format("descriptor {}", fd);
  return std::nullopt;
}

// The /dev/shm files this process has been seen mapping, by any snapshot (see seen_mapping()).
struct SeenFiles {
  std::mutex mutex;
  std::set<std::tuple<unsigned, unsigned, std::uint64_t>> files;
};
SeenFiles& seen_files() {
  static SeenFiles* seen = new SeenFiles;  // never destroyed: probes may run during exit
  return *seen;
}

void note_seen(const std::vector<Mapping>& mappings) {
  SeenFiles& seen = seen_files();
  const std::lock_guard<std::mutex> lock(seen.mutex);
  for (const Mapping& m : mappings) {
    if (m.inode != 0 && starts_with(m.path, "/dev/shm/")) seen.files.emplace(m.dev_major, m.dev_minor, m.inode);
  }
}

std::uint64_t status_field_bytes(const char* field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0 && line.size() > n && line[n] == ':') {
      std::istringstream s(line.substr(n + 1));
      std::uint64_t kib = 0;
      s >> kib;
      return kib * 1024;
    }
  }
  return 0;
}

std::string describe(const Mapping& m) {
  return fmt::format("[{:#x}, {:#x}) {} {} Locked {} kB{}", m.start, m.end, m.permissions,
                     m.path.empty() ? "<anonymous>" : m.path, m.locked_kib, m.vm_locked ? " lo" : "");
}

}  // namespace

namespace {
// The mappings covering [p, p + n), from `map` or else from a snapshot taken into `local`; or the
// verdict that the range is not fully mapped.
std::optional<Verdict> mappings_of(const void* p, std::size_t n, const MemoryMap* map, MemoryMap& local,
                                   std::vector<const Mapping*>& spans) {
  if (map == nullptr) {
    local = MemoryMap::snapshot();
    map = &local;
  }
  bool complete = false;
  spans = map->covering(p, n, &complete);
  if (!complete) return Verdict{false, fmt::format("[{}, +{}) is not fully mapped", p, n)};
  return std::nullopt;
}
}  // namespace

MemoryMap MemoryMap::snapshot() {
  MemoryMap map;
  std::ifstream in("/proc/self/smaps");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const char first = line[0];
    const bool header = (first >= '0' && first <= '9') || (first >= 'a' && first <= 'f');
    const auto dash = line.find('-');
    const auto space = line.find(' ');
    if (header && dash != std::string::npos && space != std::string::npos && dash < space) {
      Mapping m;
      m.start = std::stoull(line.substr(0, dash), nullptr, 16);
      m.end = std::stoull(line.substr(dash + 1, space - dash - 1), nullptr, 16);
      std::istringstream fields(line.substr(space + 1));
      std::string offset, dev, inode;
      fields >> m.permissions >> offset >> dev >> inode;
      std::getline(fields, m.path);
      const auto begin = m.path.find_first_not_of(' ');
      m.path = begin == std::string::npos ? std::string() : m.path.substr(begin);
      const auto colon = dev.find(':');
      if (colon != std::string::npos) {
        m.dev_major = static_cast<unsigned>(std::stoul(dev.substr(0, colon), nullptr, 16));
        m.dev_minor = static_cast<unsigned>(std::stoul(dev.substr(colon + 1), nullptr, 16));
      }
      m.inode = inode.empty() ? 0 : std::stoull(inode);
      map.mappings_.push_back(std::move(m));
      continue;
    }
    if (map.mappings_.empty()) continue;
    Mapping& m = map.mappings_.back();
    if (line.rfind("Locked:", 0) == 0) {
      std::istringstream s(line.substr(7));
      s >> m.locked_kib;
    } else if (line.rfind("VmFlags:", 0) == 0) {
      std::istringstream s(line.substr(8));
      std::string flag;
      while (s >> flag) {
        if (flag == "lo") m.vm_locked = true;
      }
    }
  }
  if (DIR* dir = opendir("/proc/self/fd")) {
    const int own = dirfd(dir);
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      const int fd = std::atoi(entry->d_name);
      struct stat st {};
      if (fd == own || fstat(fd, &st) != 0) continue;
      map.open_objects_.push_back({major(st.st_dev), minor(st.st_dev), st.st_ino, fd});
    }
    closedir(dir);
  }
  note_seen(map.mappings_);
  return map;
}

bool seen_mapping(unsigned dev_major, unsigned dev_minor, std::uint64_t inode) {
  SeenFiles& seen = seen_files();
  const std::lock_guard<std::mutex> lock(seen.mutex);
  return seen.files.count({dev_major, dev_minor, inode}) != 0;
}

int MemoryMap::descriptor_of(const Mapping& m) const {
  for (const OpenObject& o : open_objects_) {
    if (o.inode == m.inode && o.dev_major == m.dev_major && o.dev_minor == m.dev_minor) return o.fd;
  }
  return -1;
}

std::vector<const Mapping*> MemoryMap::covering(const void* p, std::size_t n, bool* complete) const {
  std::vector<const Mapping*> out;
  const auto begin = reinterpret_cast<std::uintptr_t>(p);
  const std::uintptr_t end = begin + n;
  std::uintptr_t next = begin;
  for (const Mapping& m : mappings_) {
    if (m.end <= begin || m.start >= end) continue;
    if (m.start > next) break;  // a hole
    out.push_back(&m);
    next = m.end;
    if (next >= end) break;
  }
  if (complete != nullptr) *complete = next >= end;
  return out;
}

Verdict page_locked(const void* p, std::size_t n, const MemoryMap* map) {
  if (n == 0) return {true, "empty range"};
  if (cuda::available()) return driver_page_locked(p, n);
  MemoryMap local;
  std::vector<const Mapping*> spans;
  if (auto missing = mappings_of(p, n, map, local, spans)) return *missing;
  for (const Mapping* m : spans) {
    if (!m->vm_locked) return {false, "mapping not locked: " + describe(*m)};
  }
  return {true, "locked: " + describe(*spans.front())};
}

Verdict shared_mapping(const void* p, std::size_t n, const MemoryMap* map) {
  if (n == 0) return {true, "empty range"};
  MemoryMap local;
  std::vector<const Mapping*> spans;
  if (auto missing = mappings_of(p, n, map, local, spans)) return *missing;
  for (const Mapping* m : spans) {
    if (!m->is_shared()) return {false, "private mapping: " + describe(*m)};
    if (!is_named_shared(*m)) return {false, "anonymous shared mapping no other process can open: " + describe(*m)};
  }
  const MemoryMap& snapshot = map != nullptr ? *map : local;
  std::string how;
  for (const Mapping* m : spans) {
    const auto by = reachable_by(*m, snapshot);
    if (!by) {
      return {false,
              "a shared mapping no other process can reach (no name, and no descriptor of this process "
              "refers to it: it was closed after mapping): " +
                  describe(*m)};
    }
    if (how.empty()) how = *by;
  }
  return {true, fmt::format("shared: {}, reachable through {}", describe(*spans.front()), how)};
}

Verdict fork_write_visible(void* p, std::size_t n) {
  if (n == 0) return {true, "empty range"};
  auto* first = static_cast<volatile unsigned char*>(p);
  volatile unsigned char* last = first + (n - 1);
  const unsigned char saved_first = *first;
  const unsigned char saved_last = *last;
  const unsigned char want_first = static_cast<unsigned char>(~saved_first);
  const unsigned char want_last = static_cast<unsigned char>(saved_last ^ 0x5A);
  testing::ChildOptions options;
  options.time_limit = std::chrono::seconds(60);
  options.capture_output = false;
  const testing::ChildExit writer = testing::run_child(
      [&](int) {
        *first = want_first;
        if (n > 1) *last = want_last;
      },
      options);
  if (!writer.started) return {false, writer.output};
  const bool ok = *first == want_first && (n == 1 || *last == want_last);
  *first = saved_first;
  if (n > 1) *last = saved_last;
  if (writer.exit_code() != 0) return {false, "the forked writer did not exit cleanly"};
  return {ok, ok ? "a forked child's writes are visible" : "a forked child's writes are not visible to the parent"};
}

std::uint64_t locked_bytes() { return status_field_bytes("VmLck"); }
std::uint64_t resident_bytes() { return status_field_bytes("VmRSS"); }

std::size_t shared_object_mappings() {
  const MemoryMap map = MemoryMap::snapshot();
  std::size_t count = 0;
  for (const Mapping& m : map.mappings()) {
    if (is_named_shared(m) &&
        (m.path.find("/memfd:") == 0 || m.path.find("/dev/shm/") == 0 || m.path.find("/SYSV") == 0))
      ++count;
  }
  return count;
}

// The GPU driver opens descriptors of its own the first time a process uses the device (its control
// and device nodes, the context's event and notification files), and pins bounce buffers of its own
// for the first copy from pageable memory; it keeps them for the process's lifetime. They are not
// any stager's: they are made here, before anything is counted, by making the primary context, a
// pinned allocation, a pageable copy each way and a stream once; descriptors on the driver's device
// nodes (/dev/nvidia*) are not counted either.
void settle_cuda_driver() {
  static const bool settled = [] {
    if (!cuda::available()) return true;
    try {
      cuda::host_free(cuda::host_alloc(4096));
      // A copy from and to pageable memory: the driver makes its own pinned bounce buffers for
      // those the first time, and keeps them.
      const std::unique_ptr<void, void (*)(void*)> device(cuda::device_malloc(0, 4096),
                                                          [](void* p) { cuda::device_free(p); });
      std::vector<unsigned char> pageable(4096);
      cuda::memcpy_sync(device.get(), pageable.data(), pageable.size());
      cuda::memcpy_sync(pageable.data(), device.get(), pageable.size());
      cuda::Stream stream(0);
      stream.synchronize();
    } catch (const Error&) {
      // A device that cannot even do this fails the cases that use it, with CUDA's own message.
    }
    return true;
  }();
  (void)settled;
}

namespace {

bool driver_descriptor(std::string_view target) { return target.rfind("/dev/nvidia", 0) == 0; }

}  // namespace

std::vector<std::string> open_file_descriptor_targets() {
  settle_cuda_driver();
  std::vector<std::string> targets;
  DIR* d = opendir("/proc/self/fd");
  if (d == nullptr) return targets;
  const int own = dirfd(d);
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (std::atoi(e->d_name) == own) continue;
    char buf[4096];
    const std::string link = fmt::format("/proc/self/fd/{}", e->d_name);
    const ssize_t n = readlink(link.c_str(), buf, sizeof(buf) - 1);
    std::string target = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string("?");
    if (!driver_descriptor(target)) targets.push_back(std::move(target));
  }
  closedir(d);
  std::sort(targets.begin(), targets.end());
  return targets;
}

std::size_t open_file_descriptors() { return open_file_descriptor_targets().size(); }

std::string new_descriptors(const std::vector<std::string>& before, const std::vector<std::string>& now) {
  std::vector<std::string> added;
  std::set_difference(now.begin(), now.end(), before.begin(), before.end(), std::back_inserter(added));
  std::string out;
  for (std::size_t i = 0; i < added.size() && i < 8; ++i) out += (i ? ", " : "") + added[i];
  if (added.size() > 8) out += fmt::format(" and {} more", added.size() - 8);
  return out;
}

}  // namespace stagekit::probe
