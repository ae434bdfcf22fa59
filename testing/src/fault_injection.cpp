#include "stagekit/testing/fault_injection.h"

#include <algorithm>
#include <utility>

namespace stagekit::testing {

DyingCommunicator::DyingCommunicator(dist::Communicator& inner, int die_on_tag, std::function<void()> die,
                                     std::size_t byte_budget)
    : ForwardingCommunicator(inner), die_on_tag_(die_on_tag), byte_budget_(byte_budget), die_(std::move(die)) {}

void DyingCommunicator::send(std::span<const std::byte> data, int dst, int tag) {
  if (tag == die_on_tag_ || data.size() > byte_budget_ - std::min(sent_, byte_budget_)) {
    die_();
    throw RankDied();  // a `die` action that returns still ends the rank's part here
  }
  ForwardingCommunicator::send(data, dst, tag);
  sent_ += data.size();
}

void DyingCommunicator::send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                                  std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner owner) {
  dist::Communicator::send_recv(peer, sends, recvs, tag, std::move(owner));
}

}  // namespace stagekit::testing
