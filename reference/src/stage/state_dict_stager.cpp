#include "stagekit/stage/state_dict_stager.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "copy_engine.h"
#include "stagekit/core/error.h"
#include "staging_traversal.h"
#include "storage_cache.h"

namespace stagekit {
namespace detail {

// One stage in flight: the staged tree, its copies, and what to undo if the copies fail.
struct StageOperation {
  Value result;
  std::shared_ptr<CopyOperation> copies;
  std::vector<std::pair<Storage, Storage>> new_entries;  // cleared once the copies succeeded
  StorageCache* cache = nullptr;                         // valid while new_entries is non-empty
  std::mutex mutex;
  bool finished = false;
  std::exception_ptr error;

  // Waits for the copies once; on failure removes the buffers this stage added to the cache.
  void finish() {
    std::lock_guard lock(mutex);
    if (finished) {
      if (error) std::rethrow_exception(error);
      return;
    }
    finished = true;
    try {
      copies->wait();
    } catch (...) {
      error = std::current_exception();
      for (const auto& [source, buffer] : new_entries) cache->remove(source, buffer);
      result = Value();
    }
    new_entries.clear();
    copies.reset();  // releases the sources and buffers held for the copies
    if (error) std::rethrow_exception(error);
  }
};

}  // namespace detail

// ---- PendingStage ----------------------------------------------------------------------------------

PendingStage& PendingStage::operator=(PendingStage&& other) noexcept {
  if (this != &other) {
    PendingStage doomed(std::move(*this));
    op_ = std::move(other.op_);
  }
  return *this;
}

PendingStage::~PendingStage() {
  if (!op_) return;
  try {
    op_->finish();
  } catch (...) {  // NOLINT(bugprone-empty-catch): an unwaited failure is dropped by design
  }
}

Value PendingStage::wait() {
  if (!op_) throw InvalidArgument("PendingStage::wait on an empty handle");
  op_->finish();
  return op_->result;
}

bool PendingStage::ready() const {
  if (!op_) return false;
  std::lock_guard lock(op_->mutex);
  return op_->finished || op_->copies->ready();
}

// ---- StateDictStager ---------------------------------------------------------------------------------

namespace {
// Testing hook for the regression detector: STAGEKIT_DEBUG_STAGE_DELAY_US=N makes every stage
// sleep N microseconds (read once per stager).
std::chrono::microseconds injected_stage_delay() {
  const char* text = std::getenv("STAGEKIT_DEBUG_STAGE_DELAY_US");
  if (text == nullptr || *text == '\0') return std::chrono::microseconds(0);
  return std::chrono::microseconds(std::strtoll(text, nullptr, 10));
}
}  // namespace

struct StateDictStager::State {
  explicit State(const StagerOptions& o)
      : options(o),
        delay(injected_stage_delay()),
        engine(
            o.copy_threads != 0 ? o.copy_threads : std::clamp<std::size_t>(std::thread::hardware_concurrency(), 1, 8),
            o.parallel_copy_min_bytes) {}

  StagerOptions options;
  std::chrono::microseconds delay;
  mutable std::mutex mutex;  // serialises stage / close
  detail::StorageCache cache;
  detail::CopyEngine engine;
  std::shared_ptr<detail::StageOperation> last;
  detail::TraversalSizes sizes;  // of the previous stage

  void wait_last() noexcept {
    if (!last) return;
    try {
      last->finish();
    } catch (...) {  // NOLINT(bugprone-empty-catch): reported through the PendingStage that owns it
    }
    last.reset();
  }

  std::shared_ptr<detail::StageOperation> start(const Value& sd, bool blocking) {
    wait_last();
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    detail::StagingTraversal traversal(options, cache, engine, sizes, /*keep_alive=*/!blocking);
    Value staged = traversal.run(sd);  // throws before anything is committed
    sizes = traversal.sizes();

    auto op = std::make_shared<detail::StageOperation>();
    op->result = std::move(staged);
    op->cache = &cache;
    for (const auto& [source, buffer] : traversal.new_entries()) cache.insert(source, buffer);
    op->new_entries = std::move(traversal.new_entries());
    try {
      op->copies = engine.launch(std::move(traversal.plan()), blocking);
    } catch (...) {
      for (const auto& [source, buffer] : op->new_entries) cache.remove(source, buffer);
      throw;
    }
    if (!blocking) last = op;
    return op;
  }
};

StateDictStager::StateDictStager(StagerOptions options) : state_(std::make_unique<State>(options)) {}

StateDictStager::~StateDictStager() {
  std::lock_guard lock(state_->mutex);
  state_->wait_last();
  state_->cache.clear();
}

Value StateDictStager::stage(const Value& state_dict) {
  std::lock_guard lock(state_->mutex);
  auto op = state_->start(state_dict, /*blocking=*/true);
  op->finish();
  return std::move(op->result);
}

PendingStage StateDictStager::stage_async(const Value& state_dict) {
  std::lock_guard lock(state_->mutex);
  return PendingStage(state_->start(state_dict, /*blocking=*/false));
}

void StateDictStager::close() {
  std::lock_guard lock(state_->mutex);
  state_->wait_last();
  state_->cache.clear();
}

StagerStats StateDictStager::stats() const { return state_->cache.stats(); }

const StagerOptions& StateDictStager::options() const noexcept { return state_->options; }

}  // namespace stagekit
