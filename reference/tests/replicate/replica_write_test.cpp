// replica_write_test.cpp — write_replica()'s atomicity: a second write replaces the first, no
// temporary file is left, and a write that fails (file-size limit, full tmpfs, missing directory)
// throws IoError, removes its temporary file and leaves the previous replica loadable.
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstring>

#include <fmt/format.h>

#include "replica_test_support.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/replica_file.h"
#include "stagekit/testing/child_process.h"

namespace stagekit::replicate {
namespace {

using testing::expect_same_tree;
using testing::TempDir;

Value dict_with(std::int64_t n, std::uint64_t seed) {
  return Value::dict(
      {{"w", Value(Tensor::random({n}, DType::float32, seed))}, {"seed", Value(static_cast<std::int64_t>(seed))}});
}

TEST(ReplicaWrite, WritingTwiceReplacesAtomically) {
  TempDir dir;
  const auto path = dir / "r.bin";
  const Value first = dict_with(100, 1);
  const Value second = dict_with(3000, 2);
  write_replica(path, pack_state_dict(first));
  expect_same_tree(first, load_replica(path));
  write_replica(path, pack_state_dict(second));
  expect_same_tree(second, load_replica(path));
  EXPECT_FALSE(std::filesystem::exists(replica_temporary_path(path)));
}

TEST(ReplicaWrite, NoTemporaryFileAfterSuccess) {
  TempDir dir;
  const auto path = dir / "r.bin";
  EXPECT_EQ(replica_temporary_path(path), dir / "r.bin.tmp");
  ReplicaWriteOptions options;
  options.sync = false;
  write_replica(path, pack_state_dict(dict_with(10, 3)), options);
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) names.push_back(entry.path().filename());
  EXPECT_EQ(names, std::vector<std::string>{"r.bin"});
}

TEST(ReplicaWrite, MissingDirectoryIsAnIoErrorAndCreatesNothing) {
  TempDir dir;
  const auto path = dir / "no" / "such" / "r.bin";
  try {
    write_replica(path, pack_state_dict(dict_with(10, 4)));
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("writing replica {}: open failed at byte 0: ", path.string())),
              std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir / "no"));
}

// In a forked child under RLIMIT_FSIZE: a replica larger than the limit fails with IoError, the
// previous replica still loads, and no temporary file is left. Exit status 0 when all hold.
TEST(ReplicaWrite, FailureUnderAFileSizeLimitKeepsThePreviousReplica) {
  TempDir dir;
  const auto path = dir / "r.bin";
  const Value old_dict = dict_with(64, 5);
  write_replica(path, pack_state_dict(old_dict));
  const std::uint64_t old_size = std::filesystem::file_size(path);
  stagekit::testing::ChildOptions options;
  options.time_limit = std::chrono::seconds(60);
  const stagekit::testing::ChildExit child = stagekit::testing::run_child(
      [&](int) {
        int code = 0;
        try {
          std::signal(SIGXFSZ, SIG_IGN);
          const rlimit limit{64 * 1024, 64 * 1024};
          if (::setrlimit(RLIMIT_FSIZE, &limit) != 0) ::_exit(10);
          try {
            write_replica(path, pack_state_dict(dict_with(256 * 1024, 6)));  // 1 MiB of payload
            code = 11;
          } catch (const IoError& e) {
            const std::string what = e.what();
            if (what.find("writing replica " + path.string() + ": write failed at byte ") == std::string::npos)
              code = 12;
            if (what.find("File too large") == std::string::npos) code = 13;
          }
          if (code == 0 && std::filesystem::exists(replica_temporary_path(path))) code = 14;
          if (code == 0 && std::filesystem::file_size(path) != old_size) code = 15;
          if (code == 0) {
            const Value loaded = load_replica(path);
            if (loaded["seed"].as_int() != 5 || !Tensor::equal(loaded["w"].as_tensor(), old_dict["w"].as_tensor()))
              code = 16;
          }
        } catch (...) {
          code = 17;
        }
        ::_exit(code);
      },
      options);
  ASSERT_TRUE(child.exited()) << "child died with signal " << child.signal() << (child.timed_out ? " (timed out)" : "")
                              << "; output: " << child.output;
  EXPECT_EQ(child.exit_code(), 0) << "see the exit codes in the child above";
  expect_same_tree(old_dict, load_replica(path));
}

// Optional: a full filesystem (a small tmpfs; needs the privilege to mount, skipped otherwise).
TEST(ReplicaWrite, FailureOnAFullFilesystemKeepsThePreviousReplica) {
  TempDir dir;
  const auto mountpoint = dir / "mnt";
  std::filesystem::create_directory(mountpoint);
  if (::mount("stagekit-replica-test", mountpoint.c_str(), "tmpfs", 0, "size=256k") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  }
  struct Unmount {
    std::filesystem::path at;
    ~Unmount() { ::umount2(at.c_str(), MNT_DETACH); }
  } unmount{mountpoint};
  const auto path = mountpoint / "r.bin";
  const Value old_dict = dict_with(64, 7);
  write_replica(path, pack_state_dict(old_dict));
  try {
    write_replica(path, pack_state_dict(dict_with(128 * 1024, 8)));  // 512 KiB: more than the tmpfs holds
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("No space left on device"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(replica_temporary_path(path)));
  expect_same_tree(old_dict, load_replica(path));
}

}  // namespace
}  // namespace stagekit::replicate
