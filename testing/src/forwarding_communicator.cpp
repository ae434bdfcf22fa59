#include "stagekit/testing/forwarding_communicator.h"

#include <utility>

namespace stagekit::testing {

ForwardingCommunicator::ForwardingCommunicator(dist::Communicator& inner) : inner_(inner) {
  set_timeout(inner.timeout());
}

int ForwardingCommunicator::rank() const { return inner_.rank(); }
int ForwardingCommunicator::size() const { return inner_.size(); }
std::string ForwardingCommunicator::backend() const { return inner_.backend(); }

void ForwardingCommunicator::send(std::span<const std::byte> data, int dst, int tag) { forward().send(data, dst, tag); }

void ForwardingCommunicator::recv(std::span<std::byte> data, int src, int tag) { forward().recv(data, src, tag); }

std::vector<std::byte> ForwardingCommunicator::recv_any_size(int src, int tag) {
  return forward().recv_any_size(src, tag);
}

void ForwardingCommunicator::send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                                       std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner owner) {
  forward().send_recv(peer, sends, recvs, tag, std::move(owner));
}

void ForwardingCommunicator::broadcast(std::span<std::byte> data, int root) { forward().broadcast(data, root); }

void ForwardingCommunicator::all_gather(std::span<const std::byte> local, std::span<std::byte> out) {
  forward().all_gather(local, out);
}

std::vector<std::vector<std::byte>> ForwardingCommunicator::all_gather_v(std::span<const std::byte> local) {
  return forward().all_gather_v(local);
}

void ForwardingCommunicator::all_reduce(std::span<std::byte> data, DType dtype, dist::ReduceOp op) {
  forward().all_reduce(data, dtype, op);
}

void ForwardingCommunicator::barrier() { forward().barrier(); }

std::unique_ptr<dist::Communicator> ForwardingCommunicator::split(int color, int key) {
  return forward().split(color, key);
}

dist::Communicator& ForwardingCommunicator::forward() {
  inner_.set_timeout(forwarded_timeout());
  return inner_;
}

}  // namespace stagekit::testing
