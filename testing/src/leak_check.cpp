#include "stagekit/testing/leak_check.h"

#include <dirent.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <utility>

#include <fmt/format.h>

#include "stagekit/testing/memory_probe.h"

namespace stagekit::probe {
namespace {

constexpr unsigned kShmDest = 01000;  // SHM_DEST in a segment's mode: IPC_RMID was given

template <class F>
void for_each_entry(const std::string& directory, F&& f) {
  DIR* d = opendir(directory.c_str());
  if (d == nullptr) return;
  while (const dirent* e = readdir(d)) {
    if (e->d_name[0] == '.') continue;
    f(std::string(e->d_name));
  }
  closedir(d);
}

void add_shm_files(std::vector<SharedObject>& out) {
  for_each_entry("/dev/shm", [&](const std::string& name) {
    const std::string path = "/dev/shm/" + name;
    struct stat st {};
    if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return;
    SharedObject o;
    o.name = path;
    o.bytes = static_cast<std::uint64_t>(st.st_size);
    o.identity = st.st_ino;
    o.dev_major = major(st.st_dev);
    o.dev_minor = minor(st.st_dev);
    out.push_back(std::move(o));
  });
}

// /proc/sysvipc/shm: "key shmid perms size cpid lpid nattch uid gid ...", one segment per line.
void add_sysv_segments(std::vector<SharedObject>& out) {
  std::ifstream in("/proc/sysvipc/shm");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    long long key = 0;
    std::uint64_t shmid = 0;
    std::string perms;
    std::uint64_t size = 0;
    long cpid = 0;
    long lpid = 0;
    unsigned long nattch = 0;
    if (!(fields >> key >> shmid >> perms >> size >> cpid >> lpid >> nattch)) continue;
    SharedObject o;
    o.name = fmt::format("SysV segment {}", shmid);
    o.bytes = size;
    o.identity = shmid;
    o.creator = cpid;
    o.attached = nattch;
    o.marked_for_removal = (std::strtoul(perms.c_str(), nullptr, 8) & kShmDest) != 0;
    out.push_back(std::move(o));
  }
}

bool same_object(const SharedObject& a, const SharedObject& b) {
  return a.name == b.name && a.identity == b.identity && a.dev_major == b.dev_major && a.dev_minor == b.dev_minor;
}

struct FileId {
  unsigned dev_major;
  unsigned dev_minor;
  std::uint64_t inode;
  bool operator==(const FileId&) const = default;
};

// Which of `files` some process maps (/proc/<pid>/maps) or holds open (/proc/<pid>/fd).
std::vector<FileId> files_in_use(const std::vector<FileId>& files) {
  std::vector<FileId> used;
  const auto note = [&](const FileId& id) {
    if (std::find(files.begin(), files.end(), id) != files.end() &&
        std::find(used.begin(), used.end(), id) == used.end())
      used.push_back(id);
  };
  for_each_entry("/proc", [&](const std::string& pid) {
    if (pid.find_first_not_of("0123456789") != std::string::npos) return;
    std::ifstream maps("/proc/" + pid + "/maps");
    std::string line;
    while (std::getline(maps, line)) {
      std::istringstream fields(line);
      std::string range, permissions, offset, device;
      std::uint64_t inode = 0;
      if (!(fields >> range >> permissions >> offset >> device >> inode) || inode == 0) continue;
      const auto colon = device.find(':');
      if (colon == std::string::npos) continue;
      note({static_cast<unsigned>(std::strtoul(device.substr(0, colon).c_str(), nullptr, 16)),
            static_cast<unsigned>(std::strtoul(device.substr(colon + 1).c_str(), nullptr, 16)), inode});
    }
    const std::string fd_dir = "/proc/" + pid + "/fd";
    for_each_entry(fd_dir, [&](const std::string& fd) {
      struct stat st {};
      if (stat((fd_dir + "/" + fd).c_str(), &st) == 0) note({major(st.st_dev), minor(st.st_dev), st.st_ino});
    });
  });
  return used;
}

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < 8; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > 8) out += fmt::format(" and {} more", items.size() - 8);
  return out;
}

std::string describe(const SharedObject& o) { return fmt::format("{} ({} bytes)", o.name, o.bytes); }

// The objects of `now` that `before` did not have, that this process made (a segment) or mapped (a
// file), and that nobody uses any more.
std::vector<std::string> left_behind(const ProcessResources& before, const ProcessResources& now) {
  std::vector<std::string> orphans;
  std::vector<const SharedObject*> files;  // files this process mapped: orphans unless someone uses them
  for (const SharedObject& o : now.objects) {
    if (std::any_of(before.objects.begin(), before.objects.end(),
                    [&](const SharedObject& b) { return same_object(o, b); }))
      continue;
    if (o.is_segment()) {
      if (o.creator == static_cast<long>(getpid()) && o.attached == 0 && !o.marked_for_removal)
        orphans.push_back(describe(o));
    } else if (seen_mapping(o.dev_major, o.dev_minor, o.identity)) {
      files.push_back(&o);
    }
  }
  if (files.empty()) return orphans;
  std::vector<FileId> ids;
  for (const SharedObject* f : files) ids.push_back({f->dev_major, f->dev_minor, f->identity});
  const std::vector<FileId> used = files_in_use(ids);
  for (std::size_t i = 0; i < files.size(); ++i) {
    if (std::find(used.begin(), used.end(), ids[i]) == used.end()) orphans.push_back(describe(*files[i]));
  }
  return orphans;
}

}  // namespace

std::vector<SharedObject> shared_objects() {
  std::vector<SharedObject> out;
  add_shm_files(out);
  add_sysv_segments(out);
  return out;
}

ProcessResources ProcessResources::snapshot() {
  ProcessResources r;
  r.locked_bytes = probe::locked_bytes();
  r.driver_locked_bytes = probe::driver_locked_bytes();
  r.shared_mappings = probe::shared_object_mappings();
  r.descriptors = probe::open_file_descriptor_targets();
  r.objects = probe::shared_objects();
  return r;
}

std::vector<Leak> leaks_since(const ProcessResources& before, const ProcessResources& now) {
  std::vector<Leak> leaks;
  if (now.locked_bytes > before.locked_bytes) {
    leaks.push_back(
        {"page-locked memory", fmt::format("{} bytes locked, {} before", now.locked_bytes, before.locked_bytes)});
  }
  if (now.driver_locked_bytes > before.driver_locked_bytes) {
    leaks.push_back(
        {"page-locked memory", fmt::format("{} bytes the CUDA driver knows as page-locked host memory, {} before",
                                           now.driver_locked_bytes, before.driver_locked_bytes)});
  }
  if (now.shared_mappings > before.shared_mappings) {
    leaks.push_back({"shared memory",
                     fmt::format("{} shared-memory mappings, {} before", now.shared_mappings, before.shared_mappings)});
  }
  if (now.descriptors.size() > before.descriptors.size()) {
    leaks.push_back({"file descriptors",
                     fmt::format("{} open file descriptors, {} before (new: {})", now.descriptors.size(),
                                 before.descriptors.size(), new_descriptors(before.descriptors, now.descriptors))});
  }
  const std::vector<std::string> orphans = left_behind(before, now);
  if (!orphans.empty()) {
    leaks.push_back({"shared-memory objects",
                     fmt::format("{} left behind that no process maps or holds open, so their memory stays in "
                                 "use until someone removes them by name: {}",
                                 orphans.size() == 1 ? "one shared-memory object"
                                                     : fmt::format("{} shared-memory objects", orphans.size()),
                                 list(orphans))});
  }
  return leaks;
}

}  // namespace stagekit::probe
