// The thread-world backend: N ranks as threads of one process over shared in-process state.
//
// Point to point: one FIFO mailbox per (source, destination, tag); send() copies the bytes into the
// mailbox and returns at once (it never blocks), recv() waits for the head of its mailbox.
// Collectives: each communicator numbers its collectives; rank r deposits a copy of its contribution
// and its signature in round #k of the shared group, then waits (condition variable) until every rank
// arrived. Each rank computes its own result from the deposited copies, so no rank ever reads another
// rank's buffers. A rank that gives up on a round (timeout) marks it abandoned: ranks that arrive
// later get a CommunicationError at once instead of waiting for their own timeout.
// split(): the round's deposits give every rank the colours and keys; the first member of a colour to
// look creates the new shared group, which the sub-communicators of that colour share.
#include <fmt/format.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "backend_common.h"
#include "collective_signature.h"
#include "host_reduce.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using detail::Clock;
using detail::CollectiveKind;
using detail::Signature;
using Bytes = std::vector<std::byte>;

struct Group;

struct Round {
  explicit Round(int n)
      : signatures(static_cast<std::size_t>(n)),
        data(static_cast<std::size_t>(n)),
        present(static_cast<std::size_t>(n), false) {}
  std::vector<Signature> signatures;
  std::vector<Bytes> data;
  std::vector<bool> present;
  int arrived = 0;
  std::string abandoned;                                    // why the round can no longer complete
  std::map<std::int64_t, std::shared_ptr<Group>> children;  // split: one group per colour
};

struct Group {
  explicit Group(int n) : size(n) {}
  const int size;
  std::mutex mutex;
  std::condition_variable changed;
  std::map<std::tuple<int, int, int>, std::deque<Bytes>> mailboxes;  // (src, dst, tag)
  std::map<std::uint64_t, std::shared_ptr<Round>> rounds;
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Group> group, int rank, std::chrono::milliseconds timeout)
      : group_(std::move(group)), rank_(rank) {
    set_timeout(timeout);
  }

  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return group_->size; }
  [[nodiscard]] std::string backend() const override { return "thread"; }

  void send(std::span<const std::byte> data, int dst, int tag) override {
    broken_.throw_if_broken(*this, "send");
    detail::check_peer(*this, dst, "send");
    detail::check_tag(*this, tag, "send");
    {
      std::lock_guard lock(group_->mutex);
      group_->mailboxes[{rank_, dst, tag}].emplace_back(data.begin(), data.end());
    }
    group_->changed.notify_all();
  }

  void recv(std::span<std::byte> data, int src, int tag) override {
    const Bytes message = take_message(src, tag, "recv");
    if (message.size() != data.size()) {
      throw CommunicationError(
          fmt::format("{}: recv from rank {} (tag {}): expected {} bytes, the message has {} bytes",
                      detail::describe_communicator(*this), src, tag, data.size(), message.size()));
    }
    if (!message.empty()) std::memcpy(data.data(), message.data(), message.size());
  }

  [[nodiscard]] std::vector<std::byte> recv_any_size(int src, int tag) override {
    return take_message(src, tag, "recv_any_size");
  }

  void broadcast(std::span<std::byte> data, int root) override {
    detail::check_root(*this, root, "broadcast");
    Signature sig = detail::make_signature(CollectiveKind::broadcast, 0, data.size());
    sig.root = root;
    Bytes mine = rank_ == root ? Bytes(data.begin(), data.end()) : Bytes{};
    const auto round = rendezvous(sig, std::move(mine));
    if (rank_ != root && !data.empty())
      std::memcpy(data.data(), round->data[static_cast<std::size_t>(root)].data(), data.size());
  }

  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override {
    detail::check_all_gather_sizes(*this, local.size(), out.size());
    const auto round = rendezvous(detail::make_signature(CollectiveKind::all_gather, 0, local.size()),
                                  Bytes(local.begin(), local.end()));
    for (std::size_t r = 0; r < round->data.size(); ++r) {
      if (!local.empty()) std::memcpy(out.data() + r * local.size(), round->data[r].data(), local.size());
    }
  }

  [[nodiscard]] std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override {
    const auto round = rendezvous(detail::make_signature(CollectiveKind::all_gather_v, 0, local.size()),
                                  Bytes(local.begin(), local.end()));
    return round->data;
  }

  void all_reduce(std::span<std::byte> data, DType dtype, ReduceOp op) override {
    detail::check_reduce_arguments(*this, data.size(), dtype, op);
    Signature sig = detail::make_signature(CollectiveKind::all_reduce, 0, data.size());
    sig.dtype = static_cast<std::int32_t>(dtype);
    sig.reduce_op = static_cast<std::int32_t>(op);
    const auto round = rendezvous(sig, Bytes(data.begin(), data.end()));
    std::vector<std::span<const std::byte>> inputs(round->data.begin(), round->data.end());
    detail::reduce_sum(dtype, inputs, data);
  }

  void barrier() override { (void)rendezvous(detail::make_signature(CollectiveKind::barrier, 0), {}); }

  [[nodiscard]] std::unique_ptr<Communicator> split(int color, int key) override {
    detail::check_color(*this, color);
    Signature sig = detail::make_signature(CollectiveKind::split, 0);
    sig.color = color;
    sig.key = key;
    const auto round = rendezvous(sig, {});
    if (color == kUndefinedColor) return nullptr;
    std::vector<int> members;
    for (int r = 0; r < size(); ++r) {
      if (round->signatures[static_cast<std::size_t>(r)].color == color) members.push_back(r);
    }
    std::stable_sort(members.begin(), members.end(), [&](int a, int b) {
      return round->signatures[static_cast<std::size_t>(a)].key < round->signatures[static_cast<std::size_t>(b)].key;
    });
    const int new_rank = static_cast<int>(std::find(members.begin(), members.end(), rank_) - members.begin());
    std::shared_ptr<Group> child;
    {
      std::lock_guard lock(group_->mutex);
      auto& slot = round->children[color];
      if (!slot) slot = std::make_shared<Group>(static_cast<int>(members.size()));
      child = slot;
    }
    return std::make_unique<ThreadCommunicator>(std::move(child), new_rank, timeout());
  }

 private:
  Bytes take_message(int src, int tag, std::string_view op) {
    broken_.throw_if_broken(*this, op);
    detail::check_peer(*this, src, op);
    detail::check_tag(*this, tag, op);
    const auto start = Clock::now();
    std::unique_lock lock(group_->mutex);
    const auto key = std::make_tuple(src, rank_, tag);
    const bool arrived = group_->changed.wait_until(lock, start + timeout(), [&] {
      const auto it = group_->mailboxes.find(key);
      return it != group_->mailboxes.end() && !it->second.empty();
    });
    if (!arrived) {
      const std::string what = fmt::format("{} from rank {} (tag {}) timed out after {}: rank {} sent nothing", op, src,
                                           tag, detail::format_duration(Clock::now() - start), src);
      broken_.mark(what);
      throw TimeoutError(fmt::format("{}: {}", detail::describe_communicator(*this), what));
    }
    auto it = group_->mailboxes.find(key);
    Bytes message = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) group_->mailboxes.erase(it);
    return message;
  }

  // Deposits this rank's contribution in the next round and waits until every rank did; returns the
  // completed round (its deposits are immutable from then on; `children` is guarded by the mutex).
  std::shared_ptr<Round> rendezvous(Signature sig, Bytes contribution) {
    const auto kind = static_cast<CollectiveKind>(sig.kind);
    const std::string_view name = detail::collective_name(kind);
    broken_.throw_if_broken(*this, name);
    const std::uint64_t seq = next_seq_++;
    sig.seq = static_cast<std::int64_t>(seq);
    const auto start = Clock::now();
    std::shared_ptr<Round> round;
    {
      std::unique_lock lock(group_->mutex);
      auto& slot = group_->rounds[seq];
      if (!slot) slot = std::make_shared<Round>(size());
      round = slot;
      if (!round->abandoned.empty()) {
        const std::string what = fmt::format("{} (collective #{}) cannot complete: {}", name, seq, round->abandoned);
        broken_.mark(what);
        throw CommunicationError(fmt::format("{}: {}", detail::describe_communicator(*this), what));
      }
      const auto me = static_cast<std::size_t>(rank_);
      round->signatures[me] = sig;
      round->data[me] = std::move(contribution);
      round->present[me] = true;
      if (++round->arrived == size()) {
        group_->rounds.erase(seq);
        group_->changed.notify_all();
      } else if (!group_->changed.wait_until(lock, start + timeout(), [&] { return round->arrived == size(); })) {
        std::vector<int> missing;
        for (int r = 0; r < size(); ++r) {
          if (!round->present[static_cast<std::size_t>(r)]) missing.push_back(r);
        }
        const std::string waited = detail::format_duration(Clock::now() - start);
        round->abandoned = fmt::format("rank {} gave up waiting after {}", rank_, waited);
        const std::string what = fmt::format("{} (collective #{}) timed out after {}: rank(s) {} did not arrive", name,
                                             seq, waited, detail::format_ranks(missing));
        broken_.mark(what);
        throw TimeoutError(fmt::format("{}: {}", detail::describe_communicator(*this), what));
      }
    }
    detail::check_signatures(round->signatures, detail::describe_communicator(*this));
    return round;
  }

  std::shared_ptr<Group> group_;
  int rank_;
  std::uint64_t next_seq_ = 0;
  detail::BrokenState broken_;
};

}  // namespace

void run_thread_world(int world_size, const std::function<void(Communicator&)>& body,
                      std::chrono::milliseconds timeout) {
  check_argument(world_size >= 1, fmt::format("run_thread_world: world size {} must be at least 1", world_size));
  check_argument(static_cast<bool>(body), "run_thread_world: the body is empty");
  auto group = std::make_shared<Group>(world_size);
  std::mutex first_mutex;
  std::exception_ptr first;
  auto keep_first = [&](std::exception_ptr e) {
    std::lock_guard lock(first_mutex);
    if (!first) first = std::move(e);
  };
  std::vector<std::thread> threads;
  threads.reserve(static_cast<std::size_t>(world_size));
  try {
    for (int r = 0; r < world_size; ++r) {
      threads.emplace_back([&, r] {
        try {
          ThreadCommunicator comm(group, r, timeout);
          body(comm);
        } catch (...) {
          keep_first(std::current_exception());
        }
      });
    }
  } catch (...) {
    keep_first(std::current_exception());  // could not start every rank: the started ones time out
  }
  for (auto& t : threads) t.join();
  if (first) std::rethrow_exception(first);
}

}  // namespace stagekit::dist
