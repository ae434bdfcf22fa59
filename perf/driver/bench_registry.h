// Registration of the benchmark families and the rule that matches a stage benchmark to its limit.
#pragma once

#include <string>

#include "stagekit/core/device.h"

namespace stagekit::perf {

void register_limit_benchmarks();
void register_stage_benchmarks();

// The limit benchmark a stage benchmark is compared with (see perf/METRICS.md).
[[nodiscard]] std::string matching_limit(bool cuda_source, MemoryKind destination, bool warm);

}  // namespace stagekit::perf
