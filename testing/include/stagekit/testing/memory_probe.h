// stagekit/testing/memory_probe.h — independent checks of what the OS (and CUDA driver) says about
// memory, used to verify staged buffers without trusting the implementation's own flags (namespace
// stagekit::probe).
//
//   * page_locked(): with a usable CUDA device, the driver must know the range as registered host
//     memory (cudaPointerGetAttributes, driver_page_locked()); without one, every page of the range
//     must lie in VMAs that /proc/self/smaps flags as locked ("lo" in VmFlags).
//   * shared_mapping(): every page lies in a shared ("s") mapping of a named object (memfd,
//     /dev/shm file, SysV segment) — not an anonymous shared mapping, which no other process can open
//     — that another process can still reach: a file that is still there under its name, a SysV
//     segment, or an object one of this process's file descriptors refers to (which it can send, as
//     torch's file_descriptor strategy does). A memfd or deleted file whose descriptor was closed
//     after mapping is reachable by no other process (a forked child only inherits it).
//   * fork_write_visible(): a forked child writes to the first and last byte; the parent must see
//     both writes (proving MAP_SHARED semantics); the original bytes are restored afterwards.
// Snapshots are taken per call unless a MemoryMap is passed in. Zero-length ranges are vacuous.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace stagekit::probe {

struct Mapping {
  std::uintptr_t start = 0;
  std::uintptr_t end = 0;
  std::string permissions;  // e.g. "rw-s"
  std::string path;         // e.g. "/memfd:stagekit-shared (deleted)"; empty for anonymous
  std::uint64_t locked_kib = 0;
  bool vm_locked = false;  // "lo" in VmFlags
  unsigned dev_major = 0;  // the mapped object's device and inode (0 for anonymous memory)
  unsigned dev_minor = 0;
  std::uint64_t inode = 0;
  [[nodiscard]] bool is_shared() const { return permissions.size() >= 4 && permissions[3] == 's'; }
};

class MemoryMap {
 public:
  [[nodiscard]] static MemoryMap snapshot();  // parses /proc/self/smaps and stats /proc/self/fd
  // The mappings overlapping [p, p + n) in address order; empty if some page is unmapped.
  [[nodiscard]] std::vector<const Mapping*> covering(const void* p, std::size_t n, bool* complete) const;
  [[nodiscard]] const std::vector<Mapping>& mappings() const noexcept { return mappings_; }
  // The descriptor of this process (at the snapshot) that refers to the object `m` maps, or -1.
  [[nodiscard]] int descriptor_of(const Mapping& m) const;

 private:
  struct OpenObject {
    unsigned dev_major;
    unsigned dev_minor;
    std::uint64_t inode;
    int fd;
  };
  std::vector<Mapping> mappings_;
  std::vector<OpenObject> open_objects_;
};

struct Verdict {
  bool yes = false;
  std::string detail;  // what was seen, for failure messages
};

[[nodiscard]] Verdict page_locked(const void* p, std::size_t n, const MemoryMap* map = nullptr);
[[nodiscard]] Verdict shared_mapping(const void* p, std::size_t n, const MemoryMap* map = nullptr);
[[nodiscard]] Verdict fork_write_visible(void* p, std::size_t n);
// The CUDA driver's view of [p, p + n): every page (a range of more than 4096 pages: 4096 of them,
// evenly spaced) and the last byte registered host memory (cudaHostAlloc, cudaHostRegister). No
// without a usable device.
[[nodiscard]] Verdict driver_page_locked(const void* p, std::size_t n);

// Whether any MemoryMap snapshot of this process (every probe above takes one) has seen it map the
// /dev/shm file with this device and inode: how leak checks tell this process's shared-memory files
// from those of other processes (a file does not record who made it).
[[nodiscard]] bool seen_mapping(unsigned dev_major, unsigned dev_minor, std::uint64_t inode);

// Totals for leak and release checks.
[[nodiscard]] std::uint64_t locked_bytes();    // VmLck of this process
[[nodiscard]] std::uint64_t resident_bytes();  // VmRSS of this process
// Bytes of this process's pages in memory that the CUDA driver knows as page-locked host memory:
// what cudaHostAlloc and cudaHostRegister pin, which VmLck does not count (they do not mlock). 0
// without a usable device. It asks the driver once per resident page of every readable mapping.
[[nodiscard]] std::uint64_t driver_locked_bytes();
// With a usable CUDA device, makes once what the driver keeps for the process's lifetime once it is
// used (its context and descriptors, its pinned bounce buffers for pageable copies), so that the
// counts above do not charge them to the first stager that uses the device. Every count calls it.
void settle_cuda_driver();
[[nodiscard]] std::size_t shared_object_mappings();  // mappings that are shared and named (see above)
// Open file descriptors of this process, except those the GPU driver keeps for the process's
// lifetime (its device nodes, and what it opens when the process first uses a device: the probe
// makes the CUDA context once before counting, so that a stager's first CUDA call is not counted
// as its leak).
[[nodiscard]] std::size_t open_file_descriptors();
// What those descriptors point to (readlink of /proc/self/fd/N), sorted.
[[nodiscard]] std::vector<std::string> open_file_descriptor_targets();
// The targets in `now` beyond those in `before` (a multiset difference), comma-separated, for
// failure messages: "/memfd:stagekit (deleted), pipe:[1234]".
[[nodiscard]] std::string new_descriptors(const std::vector<std::string>& before, const std::vector<std::string>& now);

}  // namespace stagekit::probe
