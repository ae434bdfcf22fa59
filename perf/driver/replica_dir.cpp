// The replication benchmarks' directories (replica_dir.h): made lazily, removed at the end.
#include "replica_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <string>
#include <system_error>

#include <fmt/format.h>
#include <fmt/std.h>

#include "stagekit/core/error.h"

namespace stagekit::perf {
namespace fs = std::filesystem;
namespace {

struct ReplicaDirs {
  std::mutex mutex;
  fs::path root;  // --stagekit_replica_dir, or empty
  fs::path run;   // this process's directory under root, once made
};

ReplicaDirs& dirs() {
  static ReplicaDirs state;
  return state;
}

fs::path make_run_dir(const fs::path& requested) {
  std::error_code ec;
  fs::path root = requested.empty() ? fs::temp_directory_path(ec) : requested;
  if (ec) throw IoError(fmt::format("no system temporary directory for the replica benchmarks: {}", ec.message()));
  fs::create_directories(root, ec);
  if (ec) throw IoError(fmt::format("cannot create the replica directory {}: {}", root, ec.message()));
  std::string templ = (root / "stagekit-replica-bench-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw IoError(fmt::format("cannot create a directory in {}: {}", root, std::strerror(errno)));
  }
  return fs::path(templ);
}

}  // namespace

void set_replica_root(fs::path root) {
  const std::lock_guard lock(dirs().mutex);
  dirs().root = std::move(root);
}

fs::path replica_rank_dir(int rank) {
  ReplicaDirs& d = dirs();
  const std::lock_guard lock(d.mutex);
  if (d.run.empty()) d.run = make_run_dir(d.root);
  fs::path dir = d.run / fmt::format("rank_{}", rank);
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw IoError(fmt::format("cannot create the replica directory {}: {}", dir, ec.message()));
  return dir;
}

void remove_replica_dirs() noexcept {
  ReplicaDirs& d = dirs();
  const std::lock_guard lock(d.mutex);
  if (d.run.empty()) return;
  std::error_code ec;
  fs::remove_all(d.run, ec);
  d.run.clear();
}

}  // namespace stagekit::perf
