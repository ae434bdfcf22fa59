// stagekit/checkpoint/async_stager.h — the asynchronous staging protocol of checkpointing (PyTorch's
// AsyncStager, spec B.3.1) and what its stage() returns.
//
// An AsyncStager's stage() returns either the staged state dict (a synchronous stager) or a future of
// it (an asynchronous one); an error of an asynchronous stage surfaces from the future and from
// synchronize_staging(), never from stage() itself. The staged result is "training-safe": later
// changes to the source are not visible in it (until the next stage of the same sources, when a
// stager reuses its buffers). close() waits for every stage in flight, then releases the stager's
// buffers; a stager is not used after close() (stage() then raises InvalidArgument).
#pragma once

#include <future>
#include <optional>
#include <variant>

#include "stagekit/core/value.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit::checkpoint {

// The staged state dict now, or a future of it.
class StagingResult {
 public:
  [[nodiscard]] static StagingResult ready(Value staged) { return StagingResult(std::move(staged)); }
  [[nodiscard]] static StagingResult pending(std::shared_future<Value> future) {
    return StagingResult(std::move(future));
  }

  [[nodiscard]] bool is_future() const noexcept { return std::holds_alternative<std::shared_future<Value>>(v_); }
  // Whether get() would return without waiting.
  [[nodiscard]] bool done() const;
  // The staged state dict; waits for a future and rethrows its error.
  [[nodiscard]] Value get() const;
  // The future (an asynchronous result only).
  [[nodiscard]] const std::shared_future<Value>& future() const { return std::get<std::shared_future<Value>>(v_); }

 private:
  explicit StagingResult(std::variant<Value, std::shared_future<Value>> v) : v_(std::move(v)) {}
  std::variant<Value, std::shared_future<Value>> v_;
};

class AsyncStager {
 public:
  virtual ~AsyncStager() = default;
  virtual StagingResult stage(const Value& state_dict) = 0;
  // Waits for the last asynchronous stage and rethrows its error; a no-op when there is none.
  virtual void synchronize_staging() = 0;
  // Whether async_save calls synchronize_staging() after handing a plain dict to its upload.
  [[nodiscard]] virtual bool should_synchronize_after_execute() const { return true; }
  virtual void close() = 0;
  // The buffer cache behind the stager, where it has one.
  [[nodiscard]] virtual std::optional<StagerStats> stats() const { return std::nullopt; }
};

}  // namespace stagekit::checkpoint
