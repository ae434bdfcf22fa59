// leak_check.h — what a process can leave behind when it stages, taken as one snapshot, and the
// leaks between two snapshots: the one mechanism behind every leak and release check of the cases
// (namespace stagekit::probe).
//
// A snapshot holds:
//   * the bytes this process has page-locked (VmLck), and with a usable CUDA device the bytes the
//     driver knows as page-locked host memory (driver_locked_bytes(): cudaHostAlloc and
//     cudaHostRegister do not show in VmLck), its shared mappings of named objects and its open file
//     descriptors (see memory_probe.h);
//   * the shared-memory objects of the system: the files in /dev/shm and the SysV segments.
// leaks_since(before, now) reports, one Leak each:
//   * more locked bytes (either view), more shared mappings or more descriptors than before;
//   * shared-memory objects nobody uses: a file in /dev/shm that appeared since `before`, that this
//     process was seen mapping (seen_mapping(): a probe saw it, e.g. while the staged results were
//     verified) and that no process maps or holds open now; and a SysV segment that appeared since
//     `before`, was made by this process, is attached by none and is not marked for removal. Such an object keeps its
//     memory until someone removes it by name; once a stager is closed and its results are dropped, nobody will (a
//     shm_open name never unlinked, a segment never given IPC_RMID).
// Objects of another process (another case running beside this one) are never reported: a file this
// process never mapped is not counted, nor one that some process still maps or holds open.
// Invariant: leaks_since(s, s) is empty.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace stagekit::probe {

// One shared-memory object of the system.
struct SharedObject {
  std::string name;            // "/dev/shm/<file>" or "SysV segment <shmid>"
  std::uint64_t bytes = 0;     // its size
  std::uint64_t identity = 0;  // the file's inode, or the segment's id
  unsigned dev_major = 0;      // the file's device (0 for a segment)
  unsigned dev_minor = 0;
  long creator = 0;                 // the segment's creator pid (0 for a file)
  unsigned long attached = 0;       // the segment's attach count (0 for a file)
  bool marked_for_removal = false;  // a segment given IPC_RMID (it goes with its last detach)
  [[nodiscard]] bool is_segment() const { return dev_major == 0 && dev_minor == 0 && creator != 0; }
};

// The files in /dev/shm and the SysV segments (/proc/sysvipc/shm), in no particular order.
[[nodiscard]] std::vector<SharedObject> shared_objects();

struct ProcessResources {
  std::uint64_t locked_bytes = 0;
  std::uint64_t driver_locked_bytes = 0;  // 0 without a usable CUDA device
  std::size_t shared_mappings = 0;
  std::vector<std::string> descriptors;  // sorted targets (open_file_descriptor_targets())
  std::vector<SharedObject> objects;     // shared_objects()
  [[nodiscard]] static ProcessResources snapshot();
};

struct Leak {
  std::string what;    // "page-locked memory", "shared memory", "file descriptors", "shared-memory objects"
  std::string detail;  // the numbers or the objects, for the failure message
};

[[nodiscard]] std::vector<Leak> leaks_since(const ProcessResources& before, const ProcessResources& now);

}  // namespace stagekit::probe
