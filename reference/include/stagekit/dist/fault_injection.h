// stagekit/dist/fault_injection.h — DyingCommunicator: a Communicator decorator for fault tests.
//
// It forwards every operation to the communicator it wraps (applying its own timeout to it first)
// until a send meets the death condition — a given tag, or a byte budget that the send would
// exceed — where it "dies": it calls the `die` action (raise SIGKILL in a process, or throw
// RankDied in a thread world) instead of sending. Used to kill a replication partner mid-exchange.
// Invariant: nothing of the send that triggers the death is sent.
#pragma once

#include <algorithm>
#include <cstddef>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "stagekit/dist/communicator.h"

namespace stagekit::dist {

struct RankDied : std::runtime_error {
  RankDied() : std::runtime_error("this rank died (fault injection)") {}
};

class DyingCommunicator final : public Communicator {
 public:
  static constexpr int kAnyTag = -1;
  // Dies on the first send with tag `die_on_tag` (kAnyTag: no tag condition), or on the first send
  // that would take the bytes sent so far beyond `byte_budget`.
  DyingCommunicator(Communicator& inner, int die_on_tag, std::function<void()> die,
                    std::size_t byte_budget = static_cast<std::size_t>(-1))
      : inner_(inner), die_on_tag_(die_on_tag), byte_budget_(byte_budget), die_(std::move(die)) {
    set_timeout(inner.timeout());
  }
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }
  void send(std::span<const std::byte> data, int dst, int tag) override {
    if (tag == die_on_tag_ || data.size() > byte_budget_ - std::min(sent_, byte_budget_)) {
      die_();
      throw RankDied();  // a `die` action that returns still ends the rank's part here
    }
    sync().send(data, dst, tag);
    sent_ += data.size();
  }
  [[nodiscard]] std::size_t bytes_sent() const noexcept { return sent_; }
  void recv(std::span<std::byte> data, int src, int tag) override { sync().recv(data, src, tag); }
  std::vector<std::byte> recv_any_size(int src, int tag) override { return sync().recv_any_size(src, tag); }
  void broadcast(std::span<std::byte> data, int root) override { sync().broadcast(data, root); }
  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override { sync().all_gather(local, out); }
  std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override {
    return sync().all_gather_v(local);
  }
  void all_reduce(std::span<std::byte> data, DType dtype, ReduceOp op) override {
    sync().all_reduce(data, dtype, op);
  }
  void barrier() override { sync().barrier(); }
  std::unique_ptr<Communicator> split(int color, int key) override { return sync().split(color, key); }

 private:
  Communicator& sync() {
    inner_.set_timeout(timeout());
    return inner_;
  }
  Communicator& inner_;
  int die_on_tag_;
  std::size_t byte_budget_;
  std::size_t sent_ = 0;
  std::function<void()> die_;
};

}  // namespace stagekit::dist
