// The two physical limits of the replication benchmarks: the backend's point-to-point bandwidth in
// the replication pattern (limit/p2p) and the replica directory's sequential write bandwidth
// (limit/seq_write). Both move plain bytes, so that replicate/* can be read as a fraction of them.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/std.h>

#include "../driver/replica_dir.h"
#include "replication_cases.h"
#include "stagekit/core/error.h"
#include "stagekit/replicate/replica_transport.h"

namespace stagekit::perf::replication {
namespace fs = std::filesystem;
namespace {

constexpr int kP2PTag = 0x5050;  // 'PP': apart from the replication protocol's tags
constexpr std::size_t kWriteBytes = std::size_t{8} << 20;

// The pattern repeats every 256 bytes, so a buffer of any multiple of 256 bytes can be sent or
// written again and again: the limits hold one chunk, not S bytes, of what they send or write.
std::byte pattern(int rank, std::size_t i) { return static_cast<std::byte>((i * 131 + rank * 29 + 7) & 0xff); }
constexpr std::size_t kPatternPeriod = 256;
static_assert(replicate::kReplicaChunkBytes % kPatternPeriod == 0 && kWriteBytes % kPatternPeriod == 0);

std::vector<std::byte> pattern_buffer(int rank, std::size_t bytes) {
  std::vector<std::byte> buffer(bytes);
  for (std::size_t i = 0; i < bytes; ++i) buffer[i] = pattern(rank, i);
  return buffer;
}

// limit/p2p: S pattern bytes to the partner and S bytes back, chunked like the replication transport.
class P2PLimit : public RankCase {
 public:
  P2PLimit(const dist::Communicator& comm, std::size_t bytes)
      : partner_(paired_partner(comm)),
        sends_first_(comm.rank() < partner_),
        out_(pattern_buffer(comm.rank(), std::min(bytes, replicate::kReplicaChunkBytes))),
        in_(bytes) {}

  void run(dist::Communicator& comm) override {
    if (sends_first_) {
      send_all(comm);
      recv_all(comm);
    } else {
      recv_all(comm);
      send_all(comm);
    }
  }

  std::string verify() override {
    for (std::size_t i = 0; i < in_.size(); ++i) {
      if (in_[i] != pattern(partner_, i)) return fmt::format("byte {} received from rank {} differs", i, partner_);
    }
    return {};
  }

 private:
  // Every chunk starts at a multiple of the chunk size, so out_ holds the bytes of each of them.
  void send_all(dist::Communicator& comm) {
    constexpr std::size_t chunk = replicate::kReplicaChunkBytes;
    for (std::size_t at = 0; at < in_.size(); at += chunk) {
      comm.send(std::span(out_).first(std::min(chunk, in_.size() - at)), partner_, kP2PTag);
    }
  }
  void recv_all(dist::Communicator& comm) {
    constexpr std::size_t chunk = replicate::kReplicaChunkBytes;
    for (std::size_t at = 0; at < in_.size(); at += chunk) {
      comm.recv(std::span(in_).subspan(at, std::min(chunk, in_.size() - at)), partner_, kP2PTag);
    }
  }

  int partner_;
  bool sends_first_;
  std::vector<std::byte> out_;  // one chunk of this rank's pattern
  std::vector<std::byte> in_;   // S bytes from the partner
};

[[noreturn]] void throw_io(const fs::path& path, const char* operation) {
  throw IoError(fmt::format("{} {}: {}", operation, path, std::strerror(errno)));
}

// limit/seq_write: a new file of S pattern bytes in writes of 8 MiB, fsynced; removed before the
// next iteration (untimed) and when the case ends.
class SeqWriteLimit : public RankCase {
 public:
  SeqWriteLimit(const dist::Communicator& comm, std::size_t bytes)
      : rank_(comm.rank()),
        bytes_(bytes),
        path_(replica_rank_dir(comm.rank()) / "seq_write.bin"),
        data_(pattern_buffer(comm.rank(), std::min(bytes, kWriteBytes))) {}
  ~SeqWriteLimit() override { remove_file(); }
  SeqWriteLimit(const SeqWriteLimit&) = delete;
  SeqWriteLimit& operator=(const SeqWriteLimit&) = delete;

  void prepare() override { remove_file(); }

  // data_ holds the bytes of every write: each starts at a multiple of its size (or it is all of S).
  void run(dist::Communicator&) override {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_io(path_, "cannot create");
    std::size_t at = 0;
    while (at < bytes_) {
      const std::size_t in_chunk = at % std::max<std::size_t>(data_.size(), 1);
      const ssize_t n = ::write(fd, data_.data() + in_chunk, std::min(data_.size() - in_chunk, bytes_ - at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        ::close(fd);
        throw_io(path_, "cannot write");
      }
      at += static_cast<std::size_t>(n);
    }
    if (::fsync(fd) != 0) {
      ::close(fd);
      throw_io(path_, "cannot fsync");
    }
    if (::close(fd) != 0) throw_io(path_, "cannot close");
  }

  std::string verify() override {
    std::error_code ec;
    const auto size = fs::file_size(path_, ec);
    if (ec) return fmt::format("{}: {}", path_, ec.message());
    if (size != bytes_) return fmt::format("{} holds {} bytes, not {}", path_, size, bytes_);
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fmt::format("cannot open {}: {}", path_, std::strerror(errno));
    std::vector<std::byte> back(std::max<std::size_t>(data_.size(), 1));
    std::size_t at = 0;
    std::string problem;
    while (at < bytes_ && problem.empty()) {
      const ssize_t n = ::read(fd, back.data(), std::min(back.size(), bytes_ - at));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        problem = fmt::format("{}: reading byte {} failed", path_, at);
        break;
      }
      for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
        if (back[i] != pattern(rank_, at + i)) {
          problem = fmt::format("{}: byte {} is not the byte written", path_, at + i);
          break;
        }
      }
      at += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return problem;
  }

 private:
  void remove_file() noexcept {
    std::error_code ec;
    fs::remove(path_, ec);
  }

  int rank_;
  std::size_t bytes_;
  fs::path path_;
  std::vector<std::byte> data_;  // one write's worth of this rank's pattern
};

}  // namespace

int paired_partner(const dist::Communicator& comm) {
  const int n = comm.size();
  if (n < 2 || n % 2 != 0) {
    throw Unsupported(
        fmt::format("replication pairs rank r with (r + N/2) % N: needs an even world size, this "
                    "world has {} rank(s)",
                    n));
  }
  return (comm.rank() + n / 2) % n;
}

std::unique_ptr<RankCase> make_p2p_limit(dist::Communicator& comm, std::size_t bytes) {
  return std::make_unique<P2PLimit>(comm, bytes);
}

std::unique_ptr<RankCase> make_seq_write_limit(dist::Communicator& comm, std::size_t bytes) {
  (void)paired_partner(comm);  // the same worlds as the benchmarks it is the limit of
  return std::make_unique<SeqWriteLimit>(comm, bytes);
}

}  // namespace stagekit::perf::replication
