#include "stagekit/checkpoint/default_stager.h"

#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <utility>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit::checkpoint {
namespace detail {

// One worker running queued stages in submission order.
class StagingWorker {
 public:
  StagingWorker() : thread_([this] { run(); }) {}
  ~StagingWorker() { stop(); }
  StagingWorker(const StagingWorker&) = delete;
  StagingWorker& operator=(const StagingWorker&) = delete;

  void submit(std::function<void()> task) {
    {
      const std::lock_guard lock(mutex_);
      queue_.push_back(std::move(task));
    }
    cv_.notify_one();
  }

  // Runs what is queued, then joins.
  void stop() {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

 private:
  void run() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;
        task = std::move(queue_.front());
        queue_.pop_front();
      }
      task();
    }
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace detail

namespace {

StagerOptions stager_options(const StagingOptions& o) {
  StagerOptions s;
  s.pin_memory = o.use_pinned_memory;
  s.share_memory = o.use_shared_memory;
  return s;
}

}  // namespace

struct DefaultStager::State {
  explicit State(const StagingOptions& o) : options(o), stager(stager_options(o)) {}
  StagingOptions options;
  StateDictStager stager;
  std::unique_ptr<detail::StagingWorker> worker;  // async staging only
  std::mutex mutex;                               // guards last and closed
  std::shared_future<Value> last;
  bool closed = false;

  Value stage_now(const Value& sd) {
    if (!options.use_non_blocking_copy) return stager.stage(sd);
    PendingStage pending = stager.stage_async(sd);
    return pending.wait();  // the copies are complete before the result is handed out
  }

  // On the worker: stages once the work queued before `produced` is done. The copies order
  // themselves after the current stream (see CopyEngine), so the worker makes that a stream of its
  // own, on the producer's device, that waits for `produced`.
  Value stage_after(const Value& sd, const cuda::Event* produced, int device) {
    if (produced == nullptr) return stage_now(sd);
    std::unique_ptr<cuda::Stream>& ordering = ordering_streams[device];
    if (!ordering) ordering = std::make_unique<cuda::Stream>(device);
    produced->wait_on(ordering->handle());
    const cuda::StreamGuard guard(ordering->handle());
    return stage_now(sd);
  }
  std::map<int, std::unique_ptr<cuda::Stream>> ordering_streams;  // the worker's only
};

DefaultStager::DefaultStager(StagingOptions options) {
  if (options.use_non_blocking_copy && !cuda::available()) {
    throw Unsupported(
        "DefaultStager: non-blocking copy (StagingOptions.use_non_blocking_copy) requires an available "
        "accelerator: " +
        cuda::availability().reason);
  }
  state_ = std::make_unique<State>(options);
  if (options.use_async_staging) state_->worker = std::make_unique<detail::StagingWorker>();
}

DefaultStager::~DefaultStager() {
  try {
    close();
  } catch (...) {  // a destructor does not throw; close() only rethrows nothing here
  }
}

StagingResult DefaultStager::stage(const Value& state_dict) {
  State& s = *state_;
  std::unique_lock lock(s.mutex);
  if (s.closed) throw InvalidArgument("DefaultStager: stage() after close()");
  if (!s.worker) {
    lock.unlock();
    return StagingResult::ready(s.stage_now(state_dict));
  }
  auto promise = std::make_shared<std::promise<Value>>();
  std::shared_future<Value> future = promise->get_future().share();
  s.last = future;
  // The caller's current stream may still be writing the sources (spec C.2.3: upstream's staging
  // stream does not wait for it): the worker's copies wait for what it had queued by now.
  std::shared_ptr<cuda::Event> produced;
  int device = 0;
  if (cuda::available()) {
    device = cuda::current_device();
    produced = std::make_shared<cuda::Event>();
    produced->record(cuda::current_stream());
  }
  s.worker->submit([&s, promise, source = state_dict, produced, device] {  // the source lives until it is staged
    try {
      promise->set_value(s.stage_after(source, produced.get(), device));
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  return StagingResult::pending(std::move(future));
}

void DefaultStager::synchronize_staging() {
  std::shared_future<Value> last;
  {
    const std::lock_guard lock(state_->mutex);
    last = state_->last;
  }
  if (last.valid()) (void)last.get();
}

void DefaultStager::close() {
  State& s = *state_;
  {
    const std::lock_guard lock(s.mutex);
    if (s.closed) return;
    s.closed = true;
  }
  if (s.worker) s.worker->stop();  // every queued and running stage completes first
  s.stager.close();
  // The last stage's future would keep its result, and so its buffers, alive for as long as this
  // stager lives (upstream's does): a failed one is kept for synchronize_staging(), a result is not.
  std::shared_future<Value> last;
  {
    const std::lock_guard lock(s.mutex);
    last = std::exchange(s.last, {});
  }
  if (!last.valid()) return;
  try {
    (void)last.get();
  } catch (...) {
    const std::lock_guard lock(s.mutex);
    s.last = last;
  }
}

std::optional<StagerStats> DefaultStager::stats() const { return state_->stager.stats(); }

const StagingOptions& DefaultStager::options() const noexcept { return state_->options; }

}  // namespace stagekit::checkpoint
