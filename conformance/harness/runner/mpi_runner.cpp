#include "runner/mpi_runner.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace stagekit::conformance {
namespace {

std::vector<std::byte> to_bytes(const std::string& s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}

std::string from_bytes(const std::vector<std::byte>& b) { return {reinterpret_cast<const char*>(b.data()), b.size()}; }

}  // namespace

std::vector<const Case*> cases_for_world(const std::vector<const Case*>& candidates, int world_size) {
  std::vector<const Case*> out;
  for (const Case* c : candidates) {
    if (c->requirements.world_size == world_size) out.push_back(c);
  }
  return out;
}

CaseResult combine_ranks(std::vector<CaseResult> per_rank) {
  if (per_rank.empty()) throw InternalError("combine_ranks: no ranks");
  std::size_t worst = 0;
  double seconds = 0;
  std::string reason;
  for (std::size_t r = 0; r < per_rank.size(); ++r) {
    seconds = std::max(seconds, per_rank[r].seconds);
    if (severity(per_rank[r].outcome) > severity(per_rank[worst].outcome)) worst = r;
  }
  for (std::size_t r = 0; r < per_rank.size(); ++r) {
    if (per_rank[r].outcome == Outcome::pass) continue;
    if (!reason.empty()) reason += "; ";
    reason += fmt::format("[rank {} {}] {}", r, outcome_name(per_rank[r].outcome), per_rank[r].reason);
  }
  const bool unanimous = std::all_of(per_rank.begin(), per_rank.end(), [&](const CaseResult& r) {
    return r.outcome == per_rank.front().outcome && r.reason == per_rank.front().reason;
  });
  CaseResult out = std::move(per_rank[worst]);
  out.seconds = seconds;
  if (out.outcome != Outcome::pass && !unanimous) out.reason = reason;  // else: every rank said the same
  return out;
}

std::vector<CaseResult> run_cases_on_world(const std::vector<const Case*>& cases, const ImplementationSource& source,
                                           dist::Communicator& world, const RunOptions& options,
                                           const std::string& refusal) {
  set_process_world(&world);
  std::vector<CaseResult> results;
  std::size_t done = 0;
  for (const Case* c : cases) {
    std::vector<CaseResult> mine = run_cases(
        {c}, source, RunOptions{false, 1, 1, options.timeout, 0, options.output_tail_bytes, nullptr, std::nullopt},
        refusal);
    const std::string encoded = nlohmann::json{
        {"outcome", outcome_name(mine[0].outcome)},
        {"reason", mine[0].reason},
        {"seconds",
         mine[0].seconds}}.dump();
    std::vector<CaseResult> per_rank;
    // A generous limit: a rank may still be inside a case that timed out on the others.
    world.set_timeout(options.timeout);
    for (const auto& bytes : world.all_gather_v(to_bytes(encoded))) {
      const auto j = nlohmann::json::parse(from_bytes(bytes));
      CaseResult r;
      r.info = c->info;
      r.outcome = parse_outcome(j.at("outcome").get<std::string>()).value_or(Outcome::crash);
      r.reason = j.at("reason").get<std::string>();
      r.seconds = j.at("seconds").get<double>();
      per_rank.push_back(std::move(r));
    }
    results.push_back(combine_ranks(std::move(per_rank)));
    ++done;
    if (options.on_attempt) options.on_attempt(results.back(), done, cases.size());
  }
  set_process_world(nullptr);
  return results;
}

}  // namespace stagekit::conformance
