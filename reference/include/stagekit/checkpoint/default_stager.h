// stagekit/checkpoint/default_stager.h — StagingOptions and DefaultStager (PyTorch's, spec B.3.2 and
// B.3.3), with the corrections of spec C.2.
//
// DefaultStager stages through one StateDictStager (pinned and shared memory as the options say):
//   * use_async_staging: stage() queues the stage on the stager's one worker thread and returns a
//     future; stages run one at a time in the order they were submitted (a new stage never overlaps a
//     running one), and each future is ready only once every byte of its result is in place.
//     Otherwise stage() stages on the calling thread and returns the dict. Either way the copies
//     from devices are ordered after the work the caller had queued on its current stream
//     (cuda::current_stream()) when it called stage() (spec C.2.3: upstream's are not);
//   * use_non_blocking_copy: copies from devices are issued without blocking and awaited before the
//     result is handed out. It needs a usable accelerator: without one the constructor raises
//     Unsupported (as upstream), so the all-default options fail on a CPU-only machine;
//   * buffers are reused across stages (the cache is never dropped after a stage, unlike upstream's
//     post-#170431 version): a result aliases the buffers the next stage of the same sources fills;
//   * close() waits for every queued and running stage, then drops the cache and the last stage's
//     result (only a failed stage's error stays, for synchronize_staging()): a closed stager holds no
//     buffer. stage() after close() raises InvalidArgument. close() is idempotent; the destructor
//     closes.
#pragma once

#include <memory>

#include "stagekit/checkpoint/async_stager.h"

namespace stagekit::checkpoint {

// In PyTorch's order, with its defaults.
struct StagingOptions {
  bool use_pinned_memory = true;
  bool use_shared_memory = true;
  bool use_async_staging = true;
  bool use_non_blocking_copy = true;
};

class DefaultStager final : public AsyncStager {
 public:
  explicit DefaultStager(StagingOptions options = {});
  ~DefaultStager() override;
  DefaultStager(const DefaultStager&) = delete;
  DefaultStager& operator=(const DefaultStager&) = delete;

  StagingResult stage(const Value& state_dict) override;
  void synchronize_staging() override;
  void close() override;
  [[nodiscard]] std::optional<StagerStats> stats() const override;
  [[nodiscard]] const StagingOptions& options() const noexcept;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace stagekit::checkpoint
