// The --impl option of stagekit-bench and stagekit-dist-bench: which implementation they measure,
// loaded through the one implementation loader (stagekit/loader/implementation_loader.h) exactly as
// stagekit-conform loads it, and the JSON context that names it.
//
// Invariants: a tool measures only an implementation that loaded and was made; a spec of no known
// kind, a refused plugin or a factory that fails is a message "TOOL: --impl SPEC: WHY" on stderr
// (the tool then exits 2, before any benchmark runs). The context names the implementation measured
// (its name and version as it reports them, the spec, its kind and the plugin path), never another.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/implementation.h"
#include "stagekit/loader/implementation_loader.h"

namespace stagekit::perf {

struct MeasuredImplementation {
  conformance::ImplementationSource source;
  std::unique_ptr<conformance::Implementation> implementation;
};

// Takes --impl SPEC, --impl=SPEC and --stagekit_impl=SPEC out of argv into `spec`; without them
// `spec` is $STAGEKIT_IMPL, else "reference". False (with a message) when --impl has no value.
[[nodiscard]] bool take_impl_flag(const char* tool, int& argc, char** argv, std::string& spec);

// Loads `spec` and makes the implementation; nullopt after the message above.
[[nodiscard]] std::optional<MeasuredImplementation> load_measured_implementation(const char* tool,
                                                                                 const std::string& spec);

// The --help lines of --impl.
[[nodiscard]] std::string impl_flag_help();

// Adds the context keys both tools write (perf/METRICS.md, reports/SCHEMAS.md): the schema version,
// the measured implementation (implementation, implementation_version, implementation_spec,
// implementation_kind, implementation_plugin), git_sha, git_dirty, compiler, stagekit_build_type,
// cpu_model, cpu_count, memory_total, thp_enabled and thp_shmem_enabled. `env` is
// describe_environment()'s.
void add_common_context(const MeasuredImplementation& measured, const nlohmann::json& env);

}  // namespace stagekit::perf
