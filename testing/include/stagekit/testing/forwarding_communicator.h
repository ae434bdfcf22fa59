// stagekit/testing/forwarding_communicator.h — ForwardingCommunicator: the base of the Communicator
// decorators that tests wrap around a case's world (a test double; not part of the installed
// interface).
//
// Every operation goes to the wrapped communicator, with this communicator's timeout applied to it
// first (forwarded_timeout(), which a subclass may cap). A subclass overrides only what it changes:
// the rank count it reports, a send that dies, a timeout it never waits past.
// Invariant: the wrapped communicator outlives this one.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "stagekit/dist/communicator.h"

namespace stagekit::testing {

class ForwardingCommunicator : public dist::Communicator {
 public:
  explicit ForwardingCommunicator(dist::Communicator& inner);

  [[nodiscard]] int rank() const override;
  [[nodiscard]] int size() const override;
  [[nodiscard]] std::string backend() const override;
  void send(std::span<const std::byte> data, int dst, int tag) override;
  void recv(std::span<std::byte> data, int src, int tag) override;
  [[nodiscard]] std::vector<std::byte> recv_any_size(int src, int tag) override;
  void send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                 std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner owner) override;
  void broadcast(std::span<std::byte> data, int root) override;
  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override;
  [[nodiscard]] std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override;
  void all_reduce(std::span<std::byte> data, DType dtype, dist::ReduceOp op) override;
  void barrier() override;
  [[nodiscard]] std::unique_ptr<dist::Communicator> split(int color, int key) override;

 protected:
  // The timeout the wrapped communicator gets for the next operation (this one's by default).
  [[nodiscard]] virtual std::chrono::milliseconds forwarded_timeout() const { return timeout(); }
  // The wrapped communicator, its timeout set for the next operation.
  dist::Communicator& forward();

 private:
  dist::Communicator& inner_;
};

}  // namespace stagekit::testing
