#include "stagekit/checkpoint/blocking_async_stager.h"

#include "stagekit/core/error.h"
#include "stagekit/dist/state_dict_utils.h"

namespace stagekit::checkpoint {

BlockingAsyncStager::BlockingAsyncStager(bool cache_staged_state_dict, bool type_check)
    : cache_(cache_staged_state_dict), type_check_(type_check) {}

StagingResult BlockingAsyncStager::stage(const Value& state_dict) {
  if (closed_) throw InvalidArgument("BlockingAsyncStager: stage() after close()");
  if (!cache_) {
    const Value fresh = dist::create_cpu_state_dict(state_dict);
    return StagingResult::ready(dist::copy_state_dict(state_dict, fresh, false, type_check_));
  }
  if (!cached_) cached_ = dist::create_cpu_state_dict(state_dict, /*pin_memory=*/true);
  return StagingResult::ready(dist::copy_state_dict(state_dict, *cached_, false, /*type_check=*/true));
}

void BlockingAsyncStager::close() {
  closed_ = true;
  cached_.reset();
}

}  // namespace stagekit::checkpoint
