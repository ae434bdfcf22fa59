// Argument checks, broken-state handling and polling back-off shared by the Communicator backends.
#include "backend_common.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <thread>

#include "stagekit/core/error.h"

namespace stagekit::dist::detail {

std::string format_duration(Clock::duration d) {
  return fmt::format("{} ms", std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

std::string format_ranks(std::span<const int> ranks) {
  if (ranks.empty()) return "none";
  return fmt::format("{}", fmt::join(ranks, ", "));
}

std::string describe_communicator(const Communicator& comm) {
  return fmt::format("{} communicator (rank {} of {})", comm.backend(), comm.rank(), comm.size());
}

void check_peer(const Communicator& comm, int peer, std::string_view op) {
  if (peer < 0 || peer >= comm.size()) {
    throw InvalidArgument(fmt::format("{}: {}: peer rank {} is out of range [0, {})", describe_communicator(comm), op,
                                      peer, comm.size()));
  }
  if (peer == comm.rank()) {
    throw InvalidArgument(fmt::format("{}: {}: a rank cannot send to or receive from itself (peer {})",
                                      describe_communicator(comm), op, peer));
  }
}

void check_root(const Communicator& comm, int root, std::string_view op) {
  if (root < 0 || root >= comm.size()) {
    throw InvalidArgument(fmt::format("{}: {}: root rank {} is out of range [0, {})", describe_communicator(comm), op,
                                      root, comm.size()));
  }
}

void check_tag(const Communicator& comm, int tag, std::string_view op) {
  if (tag < 0) throw InvalidArgument(fmt::format("{}: {}: tag {} is negative", describe_communicator(comm), op, tag));
}

void check_reduce_arguments(const Communicator& comm, std::size_t nbytes, DType dtype, ReduceOp op) {
  if (op != ReduceOp::sum) {
    throw InvalidArgument(
        fmt::format("{}: all_reduce: unknown reduce op {}", describe_communicator(comm), static_cast<int>(op)));
  }
  if (nbytes % element_size(dtype) != 0) {
    throw InvalidArgument(fmt::format("{}: all_reduce: {} bytes is not a whole number of {} elements ({} bytes each)",
                                      describe_communicator(comm), nbytes, dtype_name(dtype), element_size(dtype)));
  }
}

void check_color(const Communicator& comm, int color) {
  if (color < 0 && color != kUndefinedColor) {
    throw InvalidArgument(fmt::format("{}: split: colour {} is negative (only kUndefinedColor = {} may be)",
                                      describe_communicator(comm), color, kUndefinedColor));
  }
}

void check_all_gather_sizes(const Communicator& comm, std::size_t local_bytes, std::size_t out_bytes) {
  if (out_bytes != local_bytes * static_cast<std::size_t>(comm.size())) {
    throw InvalidArgument(fmt::format("{}: all_gather: the output holds {} bytes, expected {} ranks x {} bytes = {}",
                                      describe_communicator(comm), out_bytes, comm.size(), local_bytes,
                                      local_bytes * static_cast<std::size_t>(comm.size())));
  }
}

void check_all_gather_into_sizes(const Communicator& comm, std::size_t local_bytes, std::size_t out_bytes,
                                 std::span<const std::size_t> sizes) {
  if (sizes.size() != static_cast<std::size_t>(comm.size())) {
    throw InvalidArgument(fmt::format("{}: all_gather_into: {} sizes for {} ranks", describe_communicator(comm),
                                      sizes.size(), comm.size()));
  }
  (void)local_bytes;  // checked against sizes[rank] by every rank, once the contributions are known
  std::size_t total = 0;
  for (std::size_t n : sizes) total += n;
  if (out_bytes != total) {
    throw InvalidArgument(fmt::format("{}: all_gather_into: the output holds {} bytes, the sizes add up to {}",
                                      describe_communicator(comm), out_bytes, total));
  }
}

void check_received_sizes(const Communicator& comm, std::span<const std::size_t> got,
                          std::span<const std::size_t> expected) {
  std::vector<std::string> wrong;
  for (std::size_t r = 0; r < got.size() && r < expected.size(); ++r) {
    if (got[r] != expected[r])
      wrong.push_back(fmt::format("rank {} contributes {} bytes, expected {}", r, got[r], expected[r]));
  }
  if (!wrong.empty()) {
    throw CommunicationError(fmt::format("{}: all_gather_into: the ranks disagree on the sizes: {}",
                                         describe_communicator(comm), fmt::join(wrong, "; ")));
  }
}

void check_received_sizes(const Communicator& comm, const std::vector<std::vector<std::byte>>& blocks,
                          std::span<const std::size_t> expected) {
  std::vector<std::size_t> got;
  got.reserve(blocks.size());
  for (const auto& b : blocks) got.push_back(b.size());
  check_received_sizes(comm, got, expected);
}

void BrokenState::throw_if_broken(const Communicator& comm, std::string_view op) const {
  if (reason_.empty()) return;
  throw CommunicationError(
      fmt::format("{}: {}: the communicator is broken since an earlier failure ({}); create a new one",
                  describe_communicator(comm), op, reason_));
}

void Backoff::pause() {
  if (Clock::now() < spin_until_) {
    std::this_thread::yield();
    return;
  }
  std::this_thread::sleep_for(sleep_);
  sleep_ = std::min<std::chrono::microseconds>(sleep_ * 2, std::chrono::milliseconds(1));
}

}  // namespace stagekit::dist::detail
