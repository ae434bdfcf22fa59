// stagekit/testing/fault_injection.h — DyingCommunicator: a Communicator decorator for fault tests
// (a test double; not part of the installed interface).
//
// It forwards every operation to the communicator it wraps (as every ForwardingCommunicator, its
// timeout applied first) until a send meets the death condition — a given tag, or a byte budget that the send would
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
#include "stagekit/testing/forwarding_communicator.h"

namespace stagekit::testing {

struct RankDied : std::runtime_error {
  RankDied() : std::runtime_error("this rank died (fault injection)") {}
};

class DyingCommunicator final : public ForwardingCommunicator {
 public:
  static constexpr int kAnyTag = -1;
  // Dies on the first send with tag `die_on_tag` (kAnyTag: no tag condition), or on the first send
  // that would take the bytes sent so far beyond `byte_budget`.
  DyingCommunicator(dist::Communicator& inner, int die_on_tag, std::function<void()> die,
                    std::size_t byte_budget = static_cast<std::size_t>(-1));

  void send(std::span<const std::byte> data, int dst, int tag) override;
  // Made of send() and recv() (dist::Communicator's own), so that its sends can die too.
  void send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                 std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner owner) override;
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return sent_; }

 private:
  int die_on_tag_;
  std::size_t byte_budget_;
  std::size_t sent_ = 0;
  std::function<void()> die_;
};

}  // namespace stagekit::testing
