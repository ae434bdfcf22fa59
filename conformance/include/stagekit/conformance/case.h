// stagekit/conformance/case.h — conformance cases: identity, requirements, the body's context, and
// the registry.
//
// Every case has a stable hierarchical ID built by CaseId (stagekit/conformance/case_id.h:
// `stager.views.cpu.pin1_share0`, `stager.dtype.bfloat16.cpu.pin0_share0`), a one-line description,
// its source (the upstream test it mirrors, or "strict") and a profile: `upstream` cases assert what
// PyTorch's own tests assert; `strict` cases assert the rest of the contract; `full` cases assert it
// too, on inputs too heavy for every run (a storage over 4 GiB). Profiles nest: upstream within
// strict within full, and a run of one profile runs the cases of those within it (in_profile()). Requirements are
// checked before the body runs: a missing capability or missing hardware makes the case not_supported with a reason.
// Inside the body, check() records a failure and goes on, require() records it and ends the case; a failure names the
// state-dict path and the property.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/conformance/case_id.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/error.h"

namespace stagekit::conformance {

enum class Profile { upstream, strict, full };
enum class Outcome { pass, fail, not_supported, waived, crash, timeout };

[[nodiscard]] std::string_view profile_name(Profile p) noexcept;
// The profile named `name` ("upstream", "strict", "full"); nullopt for any other name.
[[nodiscard]] std::optional<Profile> profile_named(std::string_view name) noexcept;
// Whether a run of profile `run` runs a case of profile `of_case` (profiles nest).
[[nodiscard]] constexpr bool in_profile(Profile of_case, Profile run) noexcept {
  return static_cast<int>(of_case) <= static_cast<int>(run);
}
[[nodiscard]] std::string_view outcome_name(Outcome o) noexcept;

struct CaseInfo {
  std::string id;  // CaseId::str() for every registered case
  std::string description;
  std::string source;  // upstream test name, or "strict"
  Profile profile = Profile::strict;
};

// What a case needs; checked (in this order) before its body runs.
struct Requirements {
  bool cuda_device = false;  // a usable CUDA device and Capabilities::cuda_sources
  bool pin_memory = false;
  bool share_memory = false;
  bool non_blocking = false;
  bool cache_stats = false;
  bool no_cuda_device = false;  // only meaningful where no CUDA device is present
  bool dtensor = false;
  bool sharded_tensor = false;
  bool state_dict_utilities = false;
  bool replication = false;
  bool async_staging = false;
  int world_size = 0;  // ranks the case runs on (run_ranks); 0 for a single-process case
};

struct Failure {
  std::string path;      // state-dict path, or "<stager>" for stager-level properties
  std::string property;  // e.g. "storage sharing", "page-locked", "bytes"
  std::string detail;
  [[nodiscard]] std::string str() const;
};

class CaseContext {
 public:
  CaseContext(Implementation& impl, const CaseInfo& info);

  [[nodiscard]] Implementation& impl() noexcept { return impl_; }
  [[nodiscard]] const Capabilities& capabilities() const noexcept { return caps_; }
  [[nodiscard]] const CaseInfo& info() const noexcept { return info_; }
  [[nodiscard]] std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config);

  // Records a failure unless `ok`; returns ok. A failure identical to one already recorded (the
  // same path, property and detail, as a check repeated after a second stage gives) is kept once.
  bool check(bool ok, std::string_view path, std::string_view property, std::string detail);
  // Like check(), but ends the case on failure.
  void require(bool ok, std::string_view path, std::string_view property, std::string detail);
  void add_failures(const std::vector<Failure>& failures);
  [[noreturn]] void not_supported(std::string reason);

  // The implementation's state-dict utilities (made once; a case requiring them declares
  // Requirements::state_dict_utilities). Ends the case with a failure when none are returned.
  [[nodiscard]] StateDictUtilitiesUnderTest& utilities();
  // Runs `body` on `world_size` ranks of a thread world and waits for all of them — or, where a
  // process world is set (mpirun), on this process as its rank. check() and require() may be called
  // from every rank. A rank that ends the case (require) or throws stops participating; the others
  // then time out after `timeout` instead of hanging.
  void run_ranks(int world_size, const std::function<void(dist::Communicator&)>& body,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

  [[nodiscard]] bool failed() const noexcept { return !failures_.empty(); }
  [[nodiscard]] const std::vector<Failure>& failures() const noexcept { return failures_; }

 private:
  void record(Failure failure);  // with mutex_ held
  Implementation& impl_;
  Capabilities caps_;
  const CaseInfo& info_;
  std::vector<Failure> failures_;
  std::mutex mutex_;  // ranks of run_ranks() record failures concurrently
  std::unique_ptr<StateDictUtilitiesUnderTest> utilities_;
};

using CaseBody = std::function<void(CaseContext&)>;

struct Case {
  CaseInfo info;
  Requirements requirements;
  CaseBody body;
};

struct CaseResult {
  CaseInfo info;
  Outcome outcome = Outcome::pass;
  std::string reason;
  double seconds = 0.0;
  std::string output;             // the last output of an isolated case that crashed or timed out
  std::vector<Outcome> attempts;  // every attempt's outcome when a case is repeated (worst wins)
};

// Severity order: pass < not_supported < waived < fail < timeout < crash. The worst outcome wins.
[[nodiscard]] int severity(Outcome o) noexcept;
[[nodiscard]] bool is_bad(Outcome o) noexcept;  // fail, timeout or crash
[[nodiscard]] std::optional<Outcome> parse_outcome(std::string_view name) noexcept;

class CaseRegistry {
 public:
  static CaseRegistry& instance();
  // Adds the case `id` (the registry formats it). Throws InternalError on a malformed ID, an ID that
  // does not parse back to the same parts, a duplicate, or requirements that contradict the ID (a
  // cuda source without cuda_device or the reverse, another rank count, a pin1/share1 config
  // without the pin_memory/share_memory requirement).
  void add(const CaseId& id, std::string description, std::string source, Profile profile, Requirements requirements,
           CaseBody body);
  [[nodiscard]] const std::vector<Case>& cases() const noexcept { return cases_; }
  [[nodiscard]] const Case* find(std::string_view id) const;

 private:
  std::vector<Case> cases_;
};

// Registers cases at static-initialisation time: STAGEKIT_CONFORMANCE_CASES(views) { registry.add(...); }
// (through the helpers of harness/fixtures.h, dist_fixtures.h and replication_fixtures.h).
#define STAGEKIT_CONFORMANCE_CASES(group)                                                 \
  static void stagekit_register_##group(::stagekit::conformance::CaseRegistry& registry); \
  [[maybe_unused]] static const bool stagekit_registered_##group = [] {                   \
    stagekit_register_##group(::stagekit::conformance::CaseRegistry::instance());         \
    return true;                                                                          \
  }();                                                                                    \
  static void stagekit_register_##group(::stagekit::conformance::CaseRegistry& registry)

// The world of a run where every process is one rank (stagekit-conform under mpirun): while set,
// CaseContext::run_ranks() runs its body on this process only, over a per-case duplicate of it.
void set_process_world(dist::Communicator* world) noexcept;
[[nodiscard]] dist::Communicator* process_world() noexcept;

// The first capability `requirements` need that `caps` does not declare ("cuda_sources",
// "pin_memory", "share_memory", "non_blocking", "cache_stats", "dtensor", "sharded_tensor",
// "state_dict_utilities", "replication"), or empty. Hardware (a CUDA device present or absent) is
// not a capability: a case short of a device only is not reported here.
[[nodiscard]] std::string_view undeclared_capability(const Requirements& requirements,
                                                     const Capabilities& caps) noexcept;

// Why `requirements` cannot be met by `caps` here, or empty if they can.
[[nodiscard]] std::string unmet_requirement(const Requirements& requirements, const Capabilities& caps);

// Runs one case in this process: requirements, then the body; never throws.
[[nodiscard]] CaseResult run_case(const Case& c, Implementation& impl);

}  // namespace stagekit::conformance
