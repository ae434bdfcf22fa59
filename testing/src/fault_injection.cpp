#include "stagekit/testing/fault_injection.h"

#include <algorithm>

namespace stagekit::testing {

DyingCommunicator::DyingCommunicator(dist::Communicator& inner, int die_on_tag, std::function<void()> die,
                                     std::size_t byte_budget)
    : inner_(inner), die_on_tag_(die_on_tag), byte_budget_(byte_budget), die_(std::move(die)) {
  set_timeout(inner.timeout());
}

int DyingCommunicator::rank() const { return inner_.rank(); }
int DyingCommunicator::size() const { return inner_.size(); }
std::string DyingCommunicator::backend() const { return inner_.backend(); }

void DyingCommunicator::send(std::span<const std::byte> data, int dst, int tag) {
  if (tag == die_on_tag_ || data.size() > byte_budget_ - std::min(sent_, byte_budget_)) {
    die_();
    throw RankDied();  // a `die` action that returns still ends the rank's part here
  }
  sync().send(data, dst, tag);
  sent_ += data.size();
}

void DyingCommunicator::recv(std::span<std::byte> data, int src, int tag) { sync().recv(data, src, tag); }

std::vector<std::byte> DyingCommunicator::recv_any_size(int src, int tag) { return sync().recv_any_size(src, tag); }

void DyingCommunicator::broadcast(std::span<std::byte> data, int root) { sync().broadcast(data, root); }

void DyingCommunicator::all_gather(std::span<const std::byte> local, std::span<std::byte> out) {
  sync().all_gather(local, out);
}

std::vector<std::vector<std::byte>> DyingCommunicator::all_gather_v(std::span<const std::byte> local) {
  return sync().all_gather_v(local);
}

void DyingCommunicator::all_reduce(std::span<std::byte> data, DType dtype, dist::ReduceOp op) {
  sync().all_reduce(data, dtype, op);
}

void DyingCommunicator::barrier() { sync().barrier(); }

std::unique_ptr<dist::Communicator> DyingCommunicator::split(int color, int key) { return sync().split(color, key); }

dist::Communicator& DyingCommunicator::sync() {
  inner_.set_timeout(timeout());
  return inner_;
}

}  // namespace stagekit::testing
