// The state-dict utilities of the implementation under test, as the distributed benchmarks use
// them: one utilities object per rank (made untimed, on the rank's own thread or process), and the
// exact check of a result dict against the full tensors it must hold.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "stagekit/conformance/implementation.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"

namespace stagekit::perf {

// Unsupported when the implementation does not declare state_dict_utilities (and dtensor, when
// `needs_dtensor`): the benchmark is then not_supported with that reason.
[[nodiscard]] std::unique_ptr<conformance::StateDictUtilitiesUnderTest> rank_utilities(bool needs_dtensor);

// Empty when `dict` holds, under every name, a tensor equal to the full tensor of the same index;
// else what differs, naming the key ("<name>: <what> <where>").
[[nodiscard]] std::string differs_from_full(const Value& dict, const std::vector<std::string>& names,
                                            const std::vector<Tensor>& full, const std::string& where);

}  // namespace stagekit::perf
