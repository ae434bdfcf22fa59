// Where the replication benchmarks of stagekit-dist-bench write: --stagekit_replica_dir (default:
// the system temporary directory) holds one directory per process, "stagekit-replica-bench-XXXXXX",
// made on first use, with one subdirectory per rank ("rank_<r>"); remove_replica_dirs() deletes
// it again when the run ends.
#pragma once

#include <filesystem>

namespace stagekit::perf {

// Sets the parent directory (before any benchmark runs); empty: the system temporary directory.
void set_replica_root(std::filesystem::path root);

// This process's directory for `rank`, created (with its parents) on first use; IoError when it
// cannot be made. Safe to call from the ranks of a thread world at once.
[[nodiscard]] std::filesystem::path replica_rank_dir(int rank);

// Removes this process's directory and everything in it (nothing when none was made).
void remove_replica_dirs() noexcept;

}  // namespace stagekit::perf
