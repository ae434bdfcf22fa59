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

std::byte pattern(int rank, std::size_t i) { return static_cast<std::byte>((i * 131 + rank * 29 + 7) & 0xff); }

std::vector<std::byte> pattern_buffer(int rank, std::size_t bytes) {
  std::vector<std::byte> buffer(bytes);
  for (std::size_t i = 0; i < bytes; ++i) buffer[i] = pattern(rank, i);
  return buffer;
}

// limit/p2p: S pattern bytes to the partner and S bytes back, chunked like the replication transport.
class P2PLimit : public RankCase {
 public:
  P2PLimit(const dist::Communicator& comm, std::size_t bytes)
      : partner_(paired_partner(comm)), sends_first_(comm.rank() < partner_),
        out_(pattern_buffer(comm.rank(), bytes)), in_(bytes) {}

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
  void send_all(dist::Communicator& comm) {
    constexpr std::size_t chunk = replicate::kReplicaChunkBytes;
    for (std::size_t at = 0; at < out_.size(); at += chunk) {
      comm.send(std::span(out_).subspan(at, std::min(chunk, out_.size() - at)), partner_, kP2PTag);
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
  std::vector<std::byte> out_;
  std::vector<std::byte> in_;
};

[[noreturn]] void throw_io(const fs::path& path, const char* operation) {
  throw IoError(fmt::format("{} {}: {}", operation, path, std::strerror(errno)));
}

// limit/seq_write: a new file of S pattern bytes in large writes, fsynced; removed before the next
// iteration (untimed) and when the case ends.
class SeqWriteLimit : public RankCase {
 public:
  SeqWriteLimit(const dist::Communicator& comm, std::size_t bytes)
      : path_(replica_rank_dir(comm.rank()) / "seq_write.bin"), data_(pattern_buffer(comm.rank(), bytes)) {}
  ~SeqWriteLimit() override { remove_file(); }
  SeqWriteLimit(const SeqWriteLimit&) = delete;
  SeqWriteLimit& operator=(const SeqWriteLimit&) = delete;

  void prepare() override { remove_file(); }

  void run(dist::Communicator&) override {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw_io(path_, "cannot create");
    std::size_t at = 0;
    while (at < data_.size()) {
      const ssize_t n = ::write(fd, data_.data() + at, std::min(kWriteBytes, data_.size() - at));
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
    if (size != data_.size()) return fmt::format("{} holds {} bytes, not {}", path_, size, data_.size());
    std::vector<std::byte> back(data_.size());
    const int fd = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fmt::format("cannot open {}: {}", path_, std::strerror(errno));
    std::size_t at = 0;
    while (at < back.size()) {
      const ssize_t n = ::read(fd, back.data() + at, back.size() - at);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      at += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return back == data_ ? std::string() : fmt::format("{} does not hold the bytes written", path_);
  }

 private:
  void remove_file() noexcept {
    std::error_code ec;
    fs::remove(path_, ec);
  }

  fs::path path_;
  std::vector<std::byte> data_;
};

}  // namespace

int paired_partner(const dist::Communicator& comm) {
  const int n = comm.size();
  if (n < 2 || n % 2 != 0) {
    throw Unsupported(fmt::format("replication pairs rank r with (r + N/2) % N: needs an even world size, this "
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
