// Case-ID patterns written for stagekit 0.1 (case-ID version 1), read for one minor version.
//
// In 0.1 parameters were glued onto the feature (`stager.dtype_bfloat16.cpu.pin0_share0`,
// `utils.create_cpu_state_dict_pin0_share1.cpu.ws4`) and multi-rank cases had no config
// (`replication.basic.cpu.ws2`); CaseId::legacy_str() spells any case that way. Until 0.3 the
// runner still reads such patterns in expectations and waivers files. A pattern is a 0.1 pattern
// when it matches the 0.1 spelling of a case whose current ID it does not match
// (`stager.dtype_bfloat16.*`, `replication.basic.cpu.ws2`, but also `utils.gather_*`, which then
// meant the DTensor layouts now spelled `utils.gather.<layout>`). It keeps meaning every case it
// matches by either spelling, and a warning names the current pattern(s) matching exactly those
// cases. Any other pattern is current and left alone.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/conformance/case_id.h"

namespace stagekit::conformance {

struct LegacyPattern {
  std::string pattern;                   // as written
  std::vector<std::string> replacement;  // current patterns (or IDs) matching exactly the same cases
  std::size_t cases = 0;                 // how many of the given cases it matches
};

// Whether `pattern` ('*', '?' wildcards) names cases of `ids` by their 0.1 spelling only, and if so
// what to write instead.
[[nodiscard]] std::optional<LegacyPattern> legacy_pattern(std::string_view pattern, const std::vector<CaseId>& ids);

// "<what> 'stager.dtype_bfloat16.*' uses a pre-0.2 case ID; write 'stager.dtype.bfloat16.*'"
[[nodiscard]] std::string legacy_warning(std::string_view what, const LegacyPattern& legacy);

// The parsed IDs of every registered case.
[[nodiscard]] std::vector<CaseId> registered_case_ids();

}  // namespace stagekit::conformance
