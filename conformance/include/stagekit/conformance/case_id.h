// stagekit/conformance/case_id.h — conformance case IDs: the one place an ID is built and split.
//
// Grammar (case-ID version 2, stagekit 0.2):
//
//   ID      = area "." feature { "." variant } "." source "." config [ "." "ws" N ]
//   area    = "stager" | "utils" | "replication"
//   feature = snake_case: the upstream test's name (without "test_") or the strict property
//   variant = zero or more snake_case segments (a dtype, a layout, a bad-input kind, a utility
//             option ...): a parameter gets its own segment, never glued onto the feature
//   source  = "cpu" | "cuda"                (where the source tensors live)
//   config  = "pin<0|1>_share<0|1>"         (the stager's pin_memory / share_memory)
//           | "default"                     (the case has no stager configuration)
//   N       = the rank count, >= 2, only on multi-rank cases
//
// e.g. `stager.views.cpu.pin1_share0`, `stager.dtype.bfloat16.cpu.pin0_share0`,
// `utils.create_cpu_state_dict.cpu.pin0_share1.ws4`, `replication.basic.cpu.default.ws2`.
// snake_case is `[a-z][a-z0-9]*(_[a-z0-9]+)*`; a feature or variant may not be spelled like a
// source, a config or a rank count. An ID is parsed from the right: a last segment `ws<N>` is the
// rank count, then come the config and the source; the first segment is the area, the second the
// feature, and whatever lies between is the variant.
//
// Invariants: str() of a valid CaseId parses back to an equal CaseId, and parse() of a valid ID
// gives the CaseId whose str() is that ID; both throw InvalidArgument naming the ID and the bad
// segment otherwise. legacy_str() is the spelling of the same case in stagekit 0.1 (case-ID version
// 1, where parameters were glued onto the feature); it exists only to read files written for 0.1.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace stagekit::conformance {

inline constexpr int kCaseIdVersion = 2;

struct CaseId {
  std::string area;
  std::string feature;
  std::vector<std::string> variants;
  std::string source;
  std::string config = "default";
  int world_size = 0;  // 0: a single-process case (no rank segment); otherwise >= 2

  // The ID; throws InvalidArgument when a part breaks the grammar.
  [[nodiscard]] std::string str() const;
  // The stagekit 0.1 spelling of the same case (e.g. `stager.dtype_bfloat16.cpu.pin0_share0`,
  // `utils.create_cpu_state_dict_pin0_share1.cpu.ws4`, `replication.basic.cpu.ws2`).
  [[nodiscard]] std::string legacy_str() const;
  // "area.feature": what a side-by-side report groups rows by.
  [[nodiscard]] std::string group() const;
  // The variant segments joined by "." ("" when there are none).
  [[nodiscard]] std::string variant() const;
  // Why the parts break the grammar, or empty when they do not.
  [[nodiscard]] std::string problem() const;

  // Splits `id`; throws InvalidArgument ("malformed case ID '...': ...") on a malformed one.
  [[nodiscard]] static CaseId parse(std::string_view id);
  // As parse(), but nullopt instead of an exception.
  [[nodiscard]] static std::optional<CaseId> try_parse(std::string_view id);

  friend bool operator==(const CaseId&, const CaseId&) = default;
};

// "pin1_share0": the config segment of a stager configuration.
[[nodiscard]] std::string config_name(bool pin_memory, bool share_memory);

}  // namespace stagekit::conformance
