// The environment a result file records: git revision, compiler, CUDA, host. Consumers of the JSON
// ignore fields they do not know.
#pragma once

#include <nlohmann/json.hpp>

namespace stagekit::conformance {

[[nodiscard]] nlohmann::json describe_environment();

}  // namespace stagekit::conformance
