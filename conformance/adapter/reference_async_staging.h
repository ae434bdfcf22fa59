// The reference's asynchronous staging surface behind the adapter interface (internal to the
// reference adapter): stagekit::checkpoint's DefaultStager, BlockingAsyncStager and async_save.
#pragma once

#include <memory>
#include <string>

#include "stagekit/conformance/implementation.h"

namespace stagekit::conformance {

[[nodiscard]] std::unique_ptr<AsyncStagerUnderTest> make_reference_default_stager(const StagingOptions& options);
[[nodiscard]] std::unique_ptr<AsyncStagerUnderTest> make_reference_blocking_async_stager(
    const BlockingAsyncStagerConfig& config);
// `stager` is null or one of the two above.
[[nodiscard]] AsyncSaveReturn reference_async_save(const Value& state_dict, const std::string& directory,
                                                   AsyncStagerUnderTest* stager);
[[nodiscard]] Value reference_load_checkpoint(const std::string& directory);

}  // namespace stagekit::conformance
