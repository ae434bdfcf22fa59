// stagekit/checkpoint/blocking_async_stager.h — BlockingAsyncStager (PyTorch's, spec B.3.4 and C.2.8):
// stages synchronously through the state-dict utilities.
//
//   * without caching, every stage() returns fresh pageable buffers (create_cpu_state_dict, then
//     copy_state_dict with the stager's type_check): no result aliases another or a source, CPU
//     sources included;
//   * with caching, the first stage() builds one pinned cache from that state dict's structure and
//     every stage() copies into it (type-checked, whatever type_check says, as upstream): results
//     alias the cache, and a state dict of another structure raises InvalidArgument naming the path;
//   * should_synchronize_after_execute() is false; synchronize_staging() is a no-op; close() drops
//     the cache, and stage() after close() raises InvalidArgument.
#pragma once

#include "stagekit/checkpoint/async_stager.h"

namespace stagekit::checkpoint {

class BlockingAsyncStager final : public AsyncStager {
 public:
  explicit BlockingAsyncStager(bool cache_staged_state_dict = false, bool type_check = false);

  StagingResult stage(const Value& state_dict) override;
  void synchronize_staging() override {}
  [[nodiscard]] bool should_synchronize_after_execute() const override { return false; }
  void close() override;

 private:
  bool cache_;
  bool type_check_;
  bool closed_ = false;
  std::optional<Value> cached_;
};

}  // namespace stagekit::checkpoint
