// DyingCommunicator: a Communicator decorator for fault tests. It forwards every operation to the
// communicator it wraps (applying its own timeout to it first) until the first send on `die_on_tag`,
// where it "dies": it calls the `die` action (raise SIGKILL in a process, or throw RankDied in a
// thread world) instead of sending. Used to kill a replication partner mid-exchange: after it has
// sent the preamble and manifest, before any storage bytes.
#pragma once

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
  DyingCommunicator(dist::Communicator& inner, int die_on_tag, std::function<void()> die)
      : inner_(inner), die_on_tag_(die_on_tag), die_(std::move(die)) {
    set_timeout(inner.timeout());
  }
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string backend() const override { return inner_.backend(); }
  void send(std::span<const std::byte> data, int dst, int tag) override {
    if (tag == die_on_tag_) die_();
    sync().send(data, dst, tag);
  }
  void recv(std::span<std::byte> data, int src, int tag) override { sync().recv(data, src, tag); }
  std::vector<std::byte> recv_any_size(int src, int tag) override { return sync().recv_any_size(src, tag); }
  void broadcast(std::span<std::byte> data, int root) override { sync().broadcast(data, root); }
  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override { sync().all_gather(local, out); }
  std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override {
    return sync().all_gather_v(local);
  }
  void all_reduce(std::span<std::byte> data, DType dtype, dist::ReduceOp op) override {
    sync().all_reduce(data, dtype, op);
  }
  void barrier() override { sync().barrier(); }
  std::unique_ptr<dist::Communicator> split(int color, int key) override { return sync().split(color, key); }

 private:
  dist::Communicator& sync() {
    inner_.set_timeout(timeout());
    return inner_;
  }
  dist::Communicator& inner_;
  int die_on_tag_;
  std::function<void()> die_;
};

}  // namespace stagekit::testing
