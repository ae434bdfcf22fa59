// Replication under faults (strict, spec C.3.1, C.3.3, C.3.5): worlds that cannot be paired are
// refused, a missing partner is a timeout error naming it on either side of its pair (a survivor that
// sends first or one that receives first) and leaves the previous replica intact, damaged replica files
// are rejected by the loader, repeated stages replace the replica atomically, and a write that fails
// (file-size limit) keeps the previous replica and leaves no temporary file.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/std.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "replication_fixtures.h"
#include "stagekit/testing/fault_injection.h"

namespace stagekit::conformance {
namespace {
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::array<int, 2> kUnpairable = {1, 3};

void odd_world_refused(CaseContext& ctx, Source, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    ScratchDir dir("stagekit-replication");
    try {
      auto stager = ctx.impl().make_replication_stager(world, replication_config(dir.path()));
      // Never stage: with an odd world, some rank would wait forever for a partner that sends elsewhere.
      ctx.check(false, at_rank(r, "<stager>"), "odd world",
                stager == nullptr
                    ? fmt::format("make_replication_stager returned no stager for a world of {} rank(s) without "
                                  "raising: an odd world must be refused with a stagekit::Error",
                                  ws)
                    : fmt::format("a replication stager was made for a world of {} rank(s): the partner rule "
                                  "(r + ws/2) % ws is not symmetric there and stage() would hang",
                                  ws));
    } catch (const Error&) {
      // Refused with a stagekit error, as required.
    } catch (const std::exception& e) {
      ctx.check(false, at_rank(r, "<stager>"), "error type",
                fmt::format("refused with a non-stagekit error: {}", e.what()));
    }
  });
}

// A fault case's communicator, on every rank: it forwards every operation to the case's world with
// the timeout the stager set on it, but never one longer than `cap`. A stager that waits with a
// longer timeout than its own is cut off at `cap` (past the time allowed, so reported as too slow)
// instead of hanging the case for as long as it chose.
class TimeoutCappedCommunicator final : public stagekit::testing::ForwardingCommunicator {
 public:
  TimeoutCappedCommunicator(dist::Communicator& inner, std::chrono::milliseconds cap)
      : ForwardingCommunicator(inner), cap_(cap) {}

 private:
  [[nodiscard]] std::chrono::milliseconds forwarded_timeout() const override { return std::min(timeout(), cap_); }
  std::chrono::milliseconds cap_;
};

// The fault cases' stager timeout, and the longest any exchange of theirs may wait (a quarter of a
// second past what give_up_limit allows).
constexpr std::chrono::milliseconds kFaultTimeout = std::chrono::seconds(1);
constexpr std::chrono::milliseconds kFaultWaitCap = give_up_limit(kFaultTimeout) + std::chrono::milliseconds(250);

// The rank that dies in each run of a fault case: first rank 0, the lower rank of its pair (its
// survivor receives first), then the last rank, the higher of its pair (its survivor sends first).
// The timeout must hold on both sides of a pair.
std::array<int, 2> dying_ranks(int ws) { return {0, ws - 1}; }

// Whether `message` names rank `rank`: "rank" or "partner" (any case, "s" or "(s)" after it), then
// spaces, ':', '#' or '=', then the number, with no digit after it ("rank 1", "partner=1", "Rank(s) 1").
bool names_rank(std::string_view message, int rank) {
  std::string lower(message);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); });
  const std::string number = std::to_string(rank);
  for (const std::string_view word : {std::string_view("rank"), std::string_view("partner")}) {
    for (std::size_t at = lower.find(word); at != std::string::npos; at = lower.find(word, at + 1)) {
      std::size_t i = at + word.size();
      if (lower.compare(i, 3, "(s)") == 0) {
        i += 3;
      } else if (i < lower.size() && lower[i] == 's') {
        ++i;
      }
      while (i < lower.size() && std::string_view(" :#=").find(lower[i]) != std::string_view::npos) ++i;
      const std::size_t end = i + number.size();
      if (lower.compare(i, number.size(), number) == 0 &&
          (end == lower.size() || std::isdigit(static_cast<unsigned char>(lower[end])) == 0))
        return true;
    }
  }
  return false;
}

// Checks the survivor's error after its partner died, then that its previous replica is intact.
void check_survivor(CaseContext& ctx, int r, ReplicationStagerUnderTest& stager, const ScratchDir& dir,
                    const Value& next, const Value& kept, int dead, std::chrono::milliseconds timeout) {
  const std::string role = r < dead ? "sends first" : "receives first";
  const auto start = Clock::now();
  try {
    (void)stager.stage(next);
    ctx.check(false, at_rank(r, "<stager>"), "dead partner",
              fmt::format("stage() returned although partner rank {} died", dead));
  } catch (const Error& e) {
    const double waited = std::chrono::duration<double>(Clock::now() - start).count();
    const double limit = std::chrono::duration<double>(give_up_limit(timeout)).count();
    ctx.check(
        e.code() == ErrorCode::timeout, at_rank(r, "<stager>"), "error code",
        fmt::format("a dead partner gave a {} error instead of a timeout: {}", error_code_name(e.code()), e.what()));
    // The contract (stager header): the timeout error names the partner. Any wording will do as long
    // as "rank" or "partner" is followed by its number ("rank 1", "partner 1", "rank(s) 1", "rank=1").
    ctx.check(names_rank(e.what(), dead), at_rank(r, "<stager>"), "error names the partner",
              fmt::format("the timeout error does not name the partner (rank {}): {}", dead, e.what()));
    ctx.check(waited < limit, at_rank(r, "<stager>"), "timeout",
              fmt::format("gave up after {:.1f} s with a timeout of {} ms (allowed {:.1f} s); this rank {} in its "
                          "pair, partner rank {} died",
                          waited, timeout.count(), limit, role, dead));
  }
  // No torn replica: the file still holds the previous replica, and nothing else is there.
  check_persisted_replica(ctx, r, stager, kept, "replica kept from the previous stage");
  check_only_replica_left(ctx, r, dir.path(), stager.persisted_path(), "after the failed exchange");
}

void partner_missing(CaseContext& ctx, Source, int ws) {
  for (const int dead : dying_ranks(ws)) {
    ctx.run_ranks(ws, [&](dist::Communicator& world) {
      const int r = world.rank();
      const int p = partner_of(r, ws);
      TimeoutCappedCommunicator comm(world, kFaultWaitCap);
      ScratchDir dir("stagekit-replication");
      auto stager = make_replication_stager_or_fail(ctx, r, comm, replication_config(dir.path(), kFaultTimeout));
      if (!stager) return;
      if (!replicate_or_fail(ctx, r, *stager, simple_state_dict(r, 0), "first stage")) return;
      if (r == dead) return;  // dies before the second exchange
      if (p != dead) {
        if (auto got = replicate_or_fail(ctx, r, *stager, simple_state_dict(r, 1), "second stage")) {
          check_replica(ctx, r, "second replica", *got, simple_state_dict(p, 1));
        }
        return;
      }
      check_survivor(ctx, r, *stager, dir, simple_state_dict(r, 1), simple_state_dict(p, 0), dead, kFaultTimeout);
    });
  }
}

// Sixteen 64 KiB tensors: an exchange of several messages in any reasonable protocol.
Value many_tensors(int rank, std::uint64_t round) {
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < 16; ++i) {
    d->set(fmt::format("layer{}.weight", i),
           rank_tensor({128, 128}, rank, Device::cpu(), 100 * round + static_cast<std::uint64_t>(i)));
  }
  return Value(d);
}

void partner_killed_mid_exchange(CaseContext& ctx, Source, int ws) {
  constexpr std::size_t kPayload = 16 * 128 * 128 * 4;
  // Rank 0 sends first, so its partner is mid-receive when it dies; the last rank receives its
  // partner's whole state dict first, then dies halfway through sending its own.
  for (const int dead : dying_ranks(ws)) {
    ctx.run_ranks(ws, [&](dist::Communicator& world) {
      const int r = world.rank();
      const int p = partner_of(r, ws);
      TimeoutCappedCommunicator comm(world, kFaultWaitCap);
      ScratchDir dir("stagekit-replication");
      auto stager = make_replication_stager_or_fail(ctx, r, comm, replication_config(dir.path(), kFaultTimeout));
      if (!stager || !replicate_or_fail(ctx, r, *stager, many_tensors(r, 0), "first stage")) return;
      if (r == dead) {
        // A second stager on a communicator that dies once half the payload has been sent.
        using stagekit::testing::DyingCommunicator;
        using stagekit::testing::RankDied;
        DyingCommunicator dying(
            comm, DyingCommunicator::kAnyTag, [] { throw RankDied(); }, kPayload / 2);
        auto doomed = make_replication_stager_or_fail(ctx, r, dying, replication_config(dir.path(), kFaultTimeout));
        if (!doomed) return;
        try {
          (void)doomed->stage(many_tensors(r, 1));
        } catch (const RankDied&) {
        }
        return;
      }
      if (p != dead) {
        if (auto got = replicate_or_fail(ctx, r, *stager, many_tensors(r, 1), "second stage")) {
          check_replica(ctx, r, "second replica", *got, many_tensors(p, 1));
        }
        return;
      }
      check_survivor(ctx, r, *stager, dir, many_tensors(r, 1), many_tensors(p, 0), dead, kFaultTimeout);
    });
  }
}

std::vector<char> read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::vector<char>& bytes, std::size_t n) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(n));
}

// Overwrites one byte of the file at `path` in place.
void write_byte(const fs::path& path, std::size_t at, char value) {
  std::fstream out(path, std::ios::binary | std::ios::in | std::ios::out);
  out.seekp(static_cast<std::streamoff>(at));
  out.put(value);
}

// Why loading the damaged file at `path` was not a corruption error, or nothing when it was.
std::optional<std::string> not_rejected(CaseContext& ctx, const fs::path& path) {
  try {
    (void)ctx.impl().load_replica(path.string());
    return "loaded";
  } catch (const Error& e) {
    if (e.code() == ErrorCode::corruption) return std::nullopt;
    return fmt::format("a {} error instead of a corruption error: {}", error_code_name(e.code()), e.what());
  } catch (const std::exception& e) {
    return fmt::format("a non-stagekit error: {}", e.what());
  }
}

void expect_rejected(CaseContext& ctx, int r, const fs::path& path, const std::string& damage) {
  if (const auto why = not_rejected(ctx, path)) {
    ctx.check(false, at_rank(r, path.string()), "damaged replica", fmt::format("{} although {}", *why, damage));
  }
}

// Stages once and hands the bytes of this rank's replica file to `damage`.
template <class Damage>
void with_replica_bytes(CaseContext& ctx, int ws, Damage damage) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    ScratchDir dir("stagekit-replication");
    ScratchDir work("stagekit-damaged");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager || !replicate_or_fail(ctx, r, *stager, shared_storage_state_dict(r), "stage")) return;
    const std::vector<char> bytes = read_file(stager->persisted_path());
    const fs::path copy = work.path() / "copy.replica";
    // Control: an undamaged copy loads, so a rejection below is about the damage.
    write_file(copy, bytes, bytes.size());
    const auto loaded = load_or_fail(ctx, r, copy.string());
    if (!loaded || !check_replica(ctx, r, "undamaged copy", *loaded, shared_storage_state_dict(p))) return;
    damage(r, bytes, work.path() / "damaged.replica");
  });
}

// The byte positions a corruption case changes: every byte of a file of up to kEveryByteLimit bytes
// (the format is the implementation's own, so no region is assumed: header, manifest, each tensor's
// data, padding and trailer are all covered); in a larger file every byte of its first and last
// 4 KiB and 4096 positions spread evenly over the rest.
constexpr std::size_t kEveryByteLimit = 16 * 1024;

std::vector<std::size_t> positions_to_damage(std::size_t n) {
  std::vector<std::size_t> at;
  if (n <= kEveryByteLimit) {
    for (std::size_t i = 0; i < n; ++i) at.push_back(i);
    return at;
  }
  constexpr std::size_t kEdge = 4096;
  constexpr std::size_t kSpread = 4096;
  for (std::size_t i = 0; i < kEdge; ++i) at.push_back(i);
  for (std::size_t i = 0; i < kSpread; ++i) at.push_back(kEdge + i * (n - 2 * kEdge) / kSpread);
  for (std::size_t i = n - kEdge; i < n; ++i) at.push_back(i);
  return at;
}

void corrupted_replica(CaseContext& ctx, Source, int ws) {
  with_replica_bytes(ctx, ws, [&](int r, const std::vector<char>& bytes, const fs::path& damaged) {
    std::vector<std::string> missed;  // "byte 17: loaded", at most a few kept
    std::size_t missed_count = 0;
    const std::vector<std::size_t> positions = positions_to_damage(bytes.size());
    write_file(damaged, bytes, bytes.size());
    for (const std::size_t at : positions) {
      write_byte(damaged, at, static_cast<char>(bytes[at] ^ 0x20));
      if (const auto why = not_rejected(ctx, damaged)) {
        if (missed_count++ < 8) missed.push_back(fmt::format("byte {}: {}", at, *why));
      }
      write_byte(damaged, at, bytes[at]);
    }
    ctx.check(missed_count == 0, at_rank(r, "<replica file>"), "damaged replica",
              fmt::format("{} of the {} single-byte changes tried (of a {}-byte file) were not rejected as "
                          "corruption; first: {}",
                          missed_count, positions.size(), bytes.size(), fmt::join(missed, "; ")));
  });
}

void truncated_replica(CaseContext& ctx, Source, int ws) {
  with_replica_bytes(ctx, ws, [&](int r, const std::vector<char>& bytes, const fs::path& damaged) {
    const std::size_t n = bytes.size();
    for (std::size_t length : {std::size_t{0}, std::size_t{1}, std::size_t{16}, n / 4, n / 2, n - n / 8, n - 1}) {
      write_file(damaged, bytes, length);
      expect_rejected(ctx, r, damaged, fmt::format("it was cut to {} of its {} bytes", length, n));
    }
    for (std::size_t extra : {std::size_t{1}, std::size_t{4096}}) {
      std::vector<char> longer = bytes;
      longer.resize(n + extra, '\0');
      write_file(damaged, longer, longer.size());
      expect_rejected(ctx, r, damaged, fmt::format("{} zero byte(s) were appended", extra));
    }
  });
}

void repeated_stages(CaseContext& ctx, Source, int ws) {
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager) return;
    std::vector<Value> results;
    for (std::uint64_t round = 0; round < 3; ++round) {
      auto got = replicate_or_fail(ctx, r, *stager, simple_state_dict(r, round), fmt::format("stage #{}", round + 1));
      if (!got) return;
      check_replica(ctx, r, fmt::format("replica #{}", round + 1), *got, simple_state_dict(p, round));
      check_persisted_replica(ctx, r, *stager, simple_state_dict(p, round),
                              fmt::format("file after stage #{}", round + 1));
      check_only_replica_left(ctx, r, dir.path(), stager->persisted_path(), fmt::format("after stage #{}", round + 1));
      results.push_back(*got);
    }
    // A returned replica is the caller's: later stages must not overwrite it.
    for (std::uint64_t round = 0; round + 1 < results.size(); ++round) {
      check_replica(ctx, r, fmt::format("replica #{} after later stages", round + 1), results[round],
                    simple_state_dict(p, round));
    }
    stager->close();
  });
}

// Lowers RLIMIT_FSIZE (and ignores SIGXFSZ, so that a write fails with EFBIG) while alive.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = ::signal(SIGXFSZ, SIG_IGN);
    rlimit lowered = saved_;
    lowered.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lowered);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    ::signal(SIGXFSZ, old_handler_);
  }
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  rlimit saved_{};
  sighandler_t old_handler_ = SIG_DFL;
};

void persist_failure(CaseContext& ctx, Source, int ws) {
  constexpr std::size_t kSmall = 16 << 10;
  constexpr std::size_t kLarge = 1 << 20;
  constexpr rlim_t kLimit = 256 << 10;
  // The limit is per process: one thread sets it for a thread world, every process under mpirun.
  const bool one_per_process = process_world() != nullptr;
  ctx.run_ranks(ws, [&](dist::Communicator& world) {
    const int r = world.rank();
    const int p = partner_of(r, ws);
    ScratchDir dir("stagekit-replication");
    auto stager = make_replication_stager_or_fail(ctx, r, world, replication_config(dir.path()));
    if (!stager) return;
    const bool first = replicate_or_fail(ctx, r, *stager, sized_state_dict(r, kSmall, 0), "first stage").has_value();
    world.barrier();
    std::optional<FileSizeLimit> limit;
    if (one_per_process || r == 0) limit.emplace(kLimit);
    world.barrier();
    bool failed = false;
    std::string error;
    try {
      (void)stager->stage(sized_state_dict(r, kLarge, 1));
    } catch (const Error& e) {
      failed = true;
      error = e.what();
      ctx.check(e.code() == ErrorCode::io, at_rank(r, "<stager>"), "error code",
                fmt::format("a failed replica write gave a {} error instead of an I/O error: {}",
                            error_code_name(e.code()), e.what()));
      // Spec C.3.5: which replica could not be persisted where ("... from rank <p> to rank <r>").
      ctx.check(error.find(fmt::format("rank {}", p)) != std::string::npos &&
                    error.find(fmt::format("rank {}", r)) != std::string::npos,
                at_rank(r, "<stager>"), "error names the ranks",
                fmt::format("the error of a failed replica write does not name the partner (rank {}) and this rank "
                            "(rank {}): {}",
                            p, r, e.what()));
    }
    world.barrier();
    limit.reset();
    ctx.check(failed, at_rank(r, "<stager>"), "failed write",
              fmt::format("stage() succeeded although the {}-byte replica exceeds the {}-byte file-size limit", kLarge,
                          kLimit));
    if (!first) return;
    check_persisted_replica(ctx, r, *stager, sized_state_dict(p, kSmall, 0), "replica kept from the first stage");
    check_only_replica_left(ctx, r, dir.path(), stager->persisted_path(), "after the failed write");
  });
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(replication_faults) {
  add_replication_cases(registry, "odd_world_refused",
                        "a world that cannot be paired (odd size, or a single rank) is refused with an error at "
                        "construction instead of hanging in stage(); a single rank is stagekit's answer to spec "
                        "C.3.4 too (no distributed environment: upstream returns the input and writes nothing)",
                        "strict (spec C.3.1, C.3.4)", Profile::strict, kUnpairable, odd_world_refused);
  add_replication_cases(registry, "partner_missing",
                        "a partner that never takes part gives a timeout error naming it within the stager's timeout, "
                        "whether the survivor sends first in its pair or receives first (one run each), and the "
                        "previous replica stays intact with no temporary file",
                        "strict", Profile::strict, kWorlds2And4, partner_missing);
  add_replication_cases(
      registry, "partner_killed_mid_exchange",
      "a partner that dies halfway through sending its state dict gives a timeout error naming it "
      "within the stager's timeout, whether the survivor sends first in its pair or receives first (one run "
      "each), and the previous replica stays intact with no temporary file",
      "strict", Profile::strict, kWorlds2And4, partner_killed_mid_exchange);
  add_replication_cases(registry, "corrupted_replica",
                        "a replica file with any one byte changed is rejected by the loader with a corruption error "
                        "(every byte of the file tried)",
                        "strict", Profile::strict, kWorlds2And4, corrupted_replica);
  add_replication_cases(registry, "truncated_replica",
                        "a truncated replica file, or one with bytes appended, is rejected with a corruption error",
                        "strict", Profile::strict, kWorlds2And4, truncated_replica);
  add_replication_cases(registry, "repeated_stages",
                        "each stage replaces the replica file atomically (one file, the latest replica), and earlier "
                        "results keep their values",
                        "strict", Profile::strict, kWorlds2And4, repeated_stages);
  add_replication_cases(
      registry, "persist_failure",
      "a replica write that fails (file-size limit) is an I/O error naming the partner and this rank, keeps "
      "the previous replica valid and leaves no temporary file",
      "strict (spec C.3.5)", Profile::strict, kWorlds2And4, persist_failure);
}

}  // namespace stagekit::conformance
