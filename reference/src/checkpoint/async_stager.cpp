#include "stagekit/checkpoint/async_stager.h"

#include <chrono>

namespace stagekit::checkpoint {

bool StagingResult::done() const {
  if (!is_future()) return true;
  return future().wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

Value StagingResult::get() const { return is_future() ? future().get() : std::get<Value>(v_); }

}  // namespace stagekit::checkpoint
