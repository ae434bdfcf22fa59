// stagekit/loader/environment.h — the environment a result file records (stagekit-conform's
// results.json, the context of the bench tools' JSON): git revision, compiler, stagekit's own build
// type, CUDA, host and the kernel's transparent huge page settings. Consumers of the JSON ignore
// fields they do not know.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace stagekit::conformance {

// {"git", "stagekit_version", "stagekit_build_type", "compiler", "cplusplus", "cuda", "cuda_reason"
//  (without CUDA), "cuda_compiled", "host": {..., "thp_enabled", "thp_shmem_enabled"}}.
[[nodiscard]] nlohmann::json describe_environment();

// CMAKE_BUILD_TYPE of this stagekit build ("RelWithDebInfo", "Debug", ...; "none" when none was set).
[[nodiscard]] std::string stagekit_build_type();

// The mode the kernel's transparent huge pages are in, from
// /sys/kernel/mm/transparent_hugepage/<file> ("enabled" for anonymous memory, "shmem_enabled" for
// shared memory): the selected choice ("madvise" of "always [madvise] never"), or "unknown" when
// the file is absent or unreadable.
[[nodiscard]] std::string kernel_thp_setting(std::string_view file);

// The selected choice of a sysfs multiple-choice file's text: the bracketed word, or the trimmed
// text when nothing is bracketed; "unknown" for an empty text.
[[nodiscard]] std::string sysfs_selected_choice(std::string_view text);

}  // namespace stagekit::conformance
