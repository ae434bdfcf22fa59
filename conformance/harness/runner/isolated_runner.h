// Runs conformance cases so that the implementation under test cannot take the run down with it.
//
// With isolation (the default) every attempt of every case runs in its own forked child, in its own
// process group, with its output captured and a time limit: a segfault, abort, sanitizer report,
// exit, hang or runaway allocation (with a memory limit) in the implementation becomes that case's
// `crash` or `timeout` outcome carrying the signal or status and the last output, and the run goes
// on. Up to `jobs` children run at once; the parent stays single-threaded and never touches CUDA, so
// forking is safe. A case repeated N times reports its worst attempt, and says when attempts differ.
// Without isolation cases run in this process, one after another (for debuggers). The children are
// those of stagekit/testing/child_process.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/case.h"
#include "stagekit/loader/implementation_loader.h"

namespace stagekit::conformance {

struct RunOptions {
  bool isolate = true;
  unsigned jobs = 1;
  unsigned repeat = 1;
  std::chrono::milliseconds timeout{std::chrono::minutes(5)};  // per attempt, isolated runs only
  std::size_t memory_limit_bytes = 0;                          // RLIMIT_AS per child; 0 = none
  std::size_t output_tail_bytes = 8192;                        // output kept per crashed/timed-out case
  // Called after every attempt, in completion order: the attempt's result, attempts done, total.
  std::function<void(const CaseResult&, std::size_t, std::size_t)> on_attempt;
  // What the implementation declared (from describe_implementation), when known: an isolated run
  // then reports a case needing an undeclared capability not_supported without starting its
  // process (the same outcome and reason the case's own check gives).
  std::optional<Capabilities> declared;
};

struct ImplementationDescription {
  nlohmann::json implementation;  // name, version, capabilities (and plugin, for plugins)
  std::string error;              // why the implementation could not be created or described
  // The implementation cannot be made in this environment (its factory raised an unsupported
  // error): its cases still run, each not_supported with that reason, instead of failing.
  bool unsupported = false;
};

// Name, version and capabilities, asked in a child when isolating (a crashing factory cannot kill
// the runner). `error` is set when the source was refused or the implementation failed.
[[nodiscard]] ImplementationDescription describe_implementation(const ImplementationSource& source,
                                                                const RunOptions& options);

// Runs `cases` against the implementation of `source`; one result per case, in the given order.
// A refused source (or a describe error passed as `refusal`) fails every case with that reason.
[[nodiscard]] std::vector<CaseResult> run_cases(const std::vector<const Case*>& cases,
                                                const ImplementationSource& source, const RunOptions& options,
                                                const std::string& refusal = {});

// Folds several attempts of one case into one result: the worst outcome wins, and differing
// attempts are reported as flaky in the reason.
[[nodiscard]] CaseResult combine_attempts(std::vector<CaseResult> attempts);

}  // namespace stagekit::conformance
