// The physical limits of the replication benchmarks: the engine beneath the exchange, both
// directions at once with the partner (limit/mpi_sendrecv under mpirun, limit/memcpy_exchange in a
// thread world), and the replica directory's sequential write bandwidth with fsync
// (limit/seq_write). They move plain bytes, never through stagekit's code, so that replicate/* can be
// read as a fraction of them.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include <fmt/format.h>
#include <fmt/std.h>

#include "../driver/replica_dir.h"
#include "replication_cases.h"
#include "stagekit/core/error.h"
#include "stagekit/core/storage.h"
#include "stagekit/replicate/replica_transport.h"

#if STAGEKIT_DIST_BENCH_MPI
#include <mpi.h>
#endif

namespace stagekit::perf::replication {
namespace fs = std::filesystem;
namespace {

constexpr int kP2PTag = 0x5050;  // 'PP'; on MPI_COMM_WORLD, which stagekit's communicators only duplicate
constexpr std::size_t kWriteBytes = std::size_t{8} << 20;

std::byte pattern(int rank, std::size_t i) { return static_cast<std::byte>((i * 131 + rank * 29 + 7) & 0xff); }
// The pattern repeats every 256 bytes, so limit/seq_write holds one write's worth of it and writes
// it again and again.
constexpr std::size_t kPatternPeriod = 256;
static_assert(kWriteBytes % kPatternPeriod == 0);

std::vector<std::byte> pattern_buffer(int rank, std::size_t bytes) {
  std::vector<std::byte> buffer(bytes);
  for (std::size_t i = 0; i < bytes; ++i) buffer[i] = pattern(rank, i);
  return buffer;
}

// The bytes a rank receives from its partner in the exchange limits: S bytes of the partner's
// pattern into a touched buffer from stagekit's pageable allocator (as the replication stager's
// received storages are), checked exactly.
class ExchangeLimit : public RankCase {
 public:
  ExchangeLimit(const dist::Communicator& comm, std::size_t bytes)
      : partner_(paired_partner(comm)), in_(Storage::allocate(bytes)) {
    if (bytes > 0) std::memset(in_.data(), 0, bytes);
  }

  std::string verify() override {
    const auto* in = static_cast<const std::byte*>(in_.data());
    for (std::size_t i = 0; i < in_.nbytes(); ++i) {
      if (in[i] != pattern(partner_, i)) return fmt::format("byte {} received from rank {} differs", i, partner_);
    }
    return {};
  }

 protected:
  [[nodiscard]] std::span<std::byte> in() const { return {static_cast<std::byte*>(in_.data()), in_.nbytes()}; }
  int partner_;

 private:
  Storage in_;
};

// A Storage of `bytes` holding `rank`'s pattern.
Storage pattern_storage(int rank, std::size_t bytes) {
  Storage s = Storage::allocate(bytes);
  auto* data = static_cast<std::byte*>(s.data());
  for (std::size_t i = 0; i < bytes; ++i) data[i] = pattern(rank, i);
  return s;
}

// limit/mpi_sendrecv: the engine under mpirun. S bytes to the partner and S bytes from it, both
// directions at once: one MPI_Isend and one MPI_Irecv of S bytes, MPI_Waitall.
class MpiSendRecvLimit : public ExchangeLimit {
 public:
  MpiSendRecvLimit(const dist::Communicator& comm, std::size_t bytes)
      : ExchangeLimit(comm, bytes), out_(pattern_storage(comm.rank(), bytes)) {
    if (bytes > static_cast<std::size_t>(INT_MAX)) throw Unsupported("limit/mpi_sendrecv sends at most 2 GiB");
  }
  void run(dist::Communicator&) override {
#if STAGEKIT_DIST_BENCH_MPI
    const int count = static_cast<int>(out_.nbytes());
    MPI_Request requests[2];
    check_mpi(MPI_Irecv(in().data(), count, MPI_BYTE, partner_, kP2PTag, MPI_COMM_WORLD, &requests[0]), "MPI_Irecv");
    check_mpi(MPI_Isend(out_.data(), count, MPI_BYTE, partner_, kP2PTag, MPI_COMM_WORLD, &requests[1]), "MPI_Isend");
    check_mpi(MPI_Waitall(2, requests, MPI_STATUSES_IGNORE), "MPI_Waitall");
#else
    throw Unsupported("this build has no MPI");
#endif
  }

 private:
#if STAGEKIT_DIST_BENCH_MPI
  static void check_mpi(int rc, const char* call) {
    if (rc != MPI_SUCCESS) throw CommunicationError(fmt::format("{} returned {}", call, rc));
  }
#endif
  Storage out_;
};

// limit/memcpy_exchange: the engine of a thread world, whose ranks share one address space. Every
// rank copies the S bytes its partner would send (from a touched buffer of its own) into its buffer.
class MemcpyExchangeLimit : public ExchangeLimit {
 public:
  MemcpyExchangeLimit(const dist::Communicator& comm, std::size_t bytes)
      : ExchangeLimit(comm, bytes), source_(pattern_storage(partner_, bytes)) {}
  void run(dist::Communicator&) override {
    if (source_.nbytes() > 0) std::memcpy(in().data(), source_.data(), source_.nbytes());
  }

 private:
  Storage source_;
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

std::unique_ptr<RankCase> make_mpi_sendrecv_limit(dist::Communicator& comm, std::size_t bytes) {
  require_world(comm, "mpi", "limit/mpi_sendrecv", "limit/memcpy_exchange");
  return std::make_unique<MpiSendRecvLimit>(comm, bytes);
}

std::unique_ptr<RankCase> make_memcpy_exchange_limit(dist::Communicator& comm, std::size_t bytes) {
  require_world(comm, "thread", "limit/memcpy_exchange", "limit/mpi_sendrecv");
  return std::make_unique<MemcpyExchangeLimit>(comm, bytes);
}

std::unique_ptr<RankCase> make_seq_write_limit(dist::Communicator& comm, std::size_t bytes) {
  (void)paired_partner(comm);  // the same worlds as the benchmarks it is the limit of
  return std::make_unique<SeqWriteLimit>(comm, bytes);
}

}  // namespace stagekit::perf::replication
