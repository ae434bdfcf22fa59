// stagekit/testing/fault_injection.h — DyingCommunicator: a Communicator decorator for fault tests
// (a test double; not part of the installed interface).
//
// It forwards every operation to the communicator it wraps (applying its own timeout to it first)
// until a send meets the death condition — a given tag, or a byte budget that the send would
// exceed — where it "dies": it calls the `die` action (raise SIGKILL in a process, or throw
// RankDied in a thread world) instead of sending. Used to kill a replication partner mid-exchange.
// Invariant: nothing of the send that triggers the death is sent.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "stagekit/dist/communicator.h"

namespace stagekit::testing {

struct RankDied : std::runtime_error {
  RankDied() : std::runtime_error("this rank died (fault injection)") {}
};

class DyingCommunicator final : public dist::Communicator {
 public:
  static constexpr int kAnyTag = -1;
  // Dies on the first send with tag `die_on_tag` (kAnyTag: no tag condition), or on the first send
  // that would take the bytes sent so far beyond `byte_budget`.
  DyingCommunicator(dist::Communicator& inner, int die_on_tag, std::function<void()> die,
                    std::size_t byte_budget = static_cast<std::size_t>(-1));

  int rank() const override;
  int size() const override;
  std::string backend() const override;
  void send(std::span<const std::byte> data, int dst, int tag) override;
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return sent_; }
  void recv(std::span<std::byte> data, int src, int tag) override;
  std::vector<std::byte> recv_any_size(int src, int tag) override;
  void broadcast(std::span<std::byte> data, int root) override;
  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override;
  std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override;
  void all_reduce(std::span<std::byte> data, DType dtype, dist::ReduceOp op) override;
  void barrier() override;
  std::unique_ptr<dist::Communicator> split(int color, int key) override;

 private:
  dist::Communicator& sync();

  dist::Communicator& inner_;
  int die_on_tag_;
  std::size_t byte_budget_;
  std::size_t sent_ = 0;
  std::function<void()> die_;
};

}  // namespace stagekit::testing
