// Running the multi-rank cases under an MPI launcher: every process is one rank of the MPI world.
//
// Only the cases whose world size equals the MPI world's size are selected. Each case runs in this
// process on every rank (fork and MPI do not mix): run_ranks() hands the body a communicator
// duplicated from the world for that case, with the case's timeout. The per-rank results are
// exchanged after each case and combined identically on every rank: the worst outcome wins and the
// reason names each rank that did not pass. Rank 0 prints and writes the reports; every rank ends
// with the same exit status.
#pragma once

#include <vector>

#include "runner/isolated_runner.h"

namespace stagekit::conformance {

// The cases of `candidates` that need exactly `world_size` ranks.
[[nodiscard]] std::vector<const Case*> cases_for_world(const std::vector<const Case*>& candidates, int world_size);

// Runs `cases` on this rank of `world` and returns the combined results (the same on every rank).
[[nodiscard]] std::vector<CaseResult> run_cases_on_world(const std::vector<const Case*>& cases,
                                                         const ImplementationSource& source, dist::Communicator& world,
                                                         const RunOptions& options, const std::string& refusal = {});

// Combines one case's per-rank results (index = rank).
[[nodiscard]] CaseResult combine_ranks(std::vector<CaseResult> per_rank);

}  // namespace stagekit::conformance
