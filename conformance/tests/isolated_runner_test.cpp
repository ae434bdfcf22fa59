// The isolated runner survives the implementation under test: crashes, aborts, exits, hangs and
// leaks become crash or timeout outcomes with the signal and the last output, the other cases still
// run, parallel runs agree with serial ones, repeats expose flaky cases, and a refused or crashing
// implementation fails every case instead of producing an empty result.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "runner/isolated_runner.h"

namespace stagekit::conformance {
namespace {

class FakeImplementation : public Implementation {
 public:
  explicit FakeImplementation(bool crash_on_release = false) : crash_on_release_(crash_on_release) {}
  ~FakeImplementation() override {
    if (crash_on_release_) std::abort();
  }
  std::string name() const override { return "fake"; }
  std::string version() const override { return "1"; }
  Capabilities capabilities() const override { return {}; }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig&) override { return nullptr; }

 private:
  bool crash_on_release_;
};

ImplementationSource fake_source(bool crash_on_release = false) {
  ImplementationSource s;
  s.spec = "fake";
  s.factory = [crash_on_release] { return std::make_unique<FakeImplementation>(crash_on_release); };
  return s;
}

Case make_case(const std::string& id, CaseBody body) {
  return Case{{id, "test case", "strict", Profile::strict}, {}, std::move(body)};
}

std::vector<const Case*> pointers(const std::vector<Case>& cases) {
  std::vector<const Case*> p;
  for (const Case& c : cases) p.push_back(&c);
  return p;
}

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#if defined(__SANITIZE_THREAD__)
constexpr bool kTsan = true;
#else
constexpr bool kTsan = false;
#endif

std::vector<Case> misbehaving_cases() {
  std::vector<Case> cases;
  cases.push_back(make_case("t.pass", [](CaseContext&) {}));
  cases.push_back(make_case("t.fail", [](CaseContext& ctx) { ctx.check(false, "a.b", "bytes", "differ at 3"); }));
  cases.push_back(make_case("t.segv", [](CaseContext&) {
    std::puts("about to dereference null");
    std::fflush(stdout);
    raise(SIGSEGV);
  }));
  cases.push_back(make_case("t.abort", [](CaseContext&) {
    std::fputs("fatal: giving up\n", stderr);
    std::abort();
  }));
  cases.push_back(make_case("t.exit", [](CaseContext&) { std::_Exit(7); }));
  cases.push_back(make_case("t.hang", [](CaseContext&) {
    std::puts("waiting forever");
    std::fflush(stdout);
    for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));
  }));
  cases.push_back(make_case("t.after_hang", [](CaseContext&) {}));
  return cases;
}

void expect_misbehaviour_contained(const std::vector<CaseResult>& r) {
  ASSERT_EQ(r.size(), 7U);
  EXPECT_EQ(r[0].info.id, "t.pass");
  EXPECT_EQ(r[0].outcome, Outcome::pass);
  EXPECT_EQ(r[1].outcome, Outcome::fail);
  EXPECT_EQ(r[1].reason, "a.b: bytes: differ at 3");
  EXPECT_EQ(r[2].outcome, Outcome::crash);
  if (!kAsan && !kTsan) {  // a sanitizer reports the SEGV itself and exits
    EXPECT_TRUE(contains(r[2].reason, "SIGSEGV")) << r[2].reason;
  }
  EXPECT_TRUE(contains(r[2].output, "about to dereference null")) << r[2].output;
  EXPECT_EQ(r[3].outcome, Outcome::crash);
  EXPECT_TRUE(contains(r[3].reason, "SIGABRT")) << r[3].reason;
  EXPECT_TRUE(contains(r[3].reason, "last output: fatal: giving up")) << r[3].reason;
  EXPECT_EQ(r[4].outcome, Outcome::crash);
  EXPECT_TRUE(contains(r[4].reason, "exited with status 7 without reporting a result")) << r[4].reason;
  EXPECT_EQ(r[5].outcome, Outcome::timeout);
  EXPECT_TRUE(contains(r[5].reason, "did not finish within 1 s; killed")) << r[5].reason;
  EXPECT_TRUE(contains(r[5].output, "waiting forever"));
  EXPECT_EQ(r[6].outcome, Outcome::pass) << "the run must go on after a hang";
}

// Recurses until the stack runs out (the frames cannot be folded away).
int recurse_forever(int depth) {
  volatile char frame[512];
  frame[0] = static_cast<char>(depth);
  if (depth < 0) return 0;  // never: depth only grows
  return recurse_forever(depth + 1) + frame[0];
}

// A case that overflows its stack crashes, and its reason says it was a stack overflow.
TEST(IsolatedRunner, AStackOverflowIsNamedAsSuch) {
  std::vector<Case> cases;
  cases.push_back(make_case("t.recursion", [](CaseContext&) { (void)recurse_forever(0); }));
  cases.push_back(make_case("t.after", [](CaseContext&) {}));
  const auto r = run_cases(pointers(cases), fake_source(), RunOptions{});
  ASSERT_EQ(r.size(), 2U);
  EXPECT_EQ(r[0].outcome, Outcome::crash);
  EXPECT_EQ(r[1].outcome, Outcome::pass);
  if (kAsan || kTsan) GTEST_SKIP() << "not_supported: the sanitizer reports the stack overflow its own way";
  EXPECT_TRUE(contains(r[0].reason + "\n" + r[0].output, "stack overflow")) << r[0].reason << "\n" << r[0].output;
  EXPECT_TRUE(contains(r[0].reason, "SIGSEGV")) << r[0].reason;
}

// A failure repeated (a check run after a cold and a warm stage) is reported once; different ones
// all are.
TEST(CaseContext, KeepsEachDistinctFailureOnce) {
  FakeImplementation impl;
  const CaseInfo info{"t.repeat", "test case", "strict", Profile::strict};
  CaseContext ctx(impl, info);
  EXPECT_FALSE(ctx.check(false, "w", "bytes", "differ at 3"));
  EXPECT_FALSE(ctx.check(false, "w", "bytes", "differ at 3"));
  ctx.add_failures({{"w", "bytes", "differ at 3"}, {"w", "bytes", "differ at 4"}, {"v", "bytes", "differ at 3"}});
  ASSERT_EQ(ctx.failures().size(), 3U);
  EXPECT_EQ(ctx.failures()[1].detail, "differ at 4");
  EXPECT_EQ(ctx.failures()[2].path, "v");
}

TEST(IsolatedRunner, CrashesExitsAndHangsBecomeOutcomesAndTheRunGoesOn) {
  const auto cases = misbehaving_cases();
  RunOptions o;
  o.timeout = std::chrono::seconds(1);
  std::size_t reported = 0;
  o.on_attempt = [&](const CaseResult&, std::size_t done, std::size_t total) {
    ++reported;
    EXPECT_EQ(done, reported);
    EXPECT_EQ(total, 7U);
  };
  const auto start = std::chrono::steady_clock::now();
  expect_misbehaviour_contained(run_cases(pointers(cases), fake_source(), o));
  EXPECT_EQ(reported, 7U);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(IsolatedRunner, ParallelJobsGiveTheSameResultsInOrder) {
  const auto cases = misbehaving_cases();
  RunOptions o;
  o.timeout = std::chrono::seconds(1);
  o.jobs = 4;
  expect_misbehaviour_contained(run_cases(pointers(cases), fake_source(), o));
}

TEST(IsolatedRunner, CrashWhileReleasingTheImplementationIsACrash) {
  const std::vector<Case> cases = {make_case("t.pass", [](CaseContext&) {})};
  const auto r = run_cases(pointers(cases), fake_source(/*crash_on_release=*/true), RunOptions{});
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].outcome, Outcome::crash);
  EXPECT_TRUE(contains(r[0].reason, "the case finished (pass) but its process then died of")) << r[0].reason;
}

TEST(IsolatedRunner, RepeatsExposeFlakyCasesAndTheWorstOutcomeWins) {
  const auto counter = std::filesystem::temp_directory_path() / ("stagekit-flaky-" + std::to_string(getpid()));
  std::filesystem::remove(counter);
  const std::vector<Case> cases = {make_case("t.flaky", [counter](CaseContext& ctx) {
    // Every other attempt fails; attempts are separate processes, so count in a file.
    std::size_t n = std::filesystem::exists(counter) ? std::filesystem::file_size(counter) : 0;
    std::ofstream(counter, std::ios::app) << 'x';
    ctx.check(n % 2 == 0, "<stager>", "bytes", "odd attempt");
  })};
  RunOptions o;
  o.repeat = 4;
  const auto r = run_cases(pointers(cases), fake_source(), o);
  std::filesystem::remove(counter);
  ASSERT_EQ(r.size(), 1U);
  EXPECT_EQ(r[0].outcome, Outcome::fail);
  ASSERT_EQ(r[0].attempts.size(), 4U);
  EXPECT_TRUE(contains(r[0].reason, "flaky over 4 attempts (pass 2, fail 2): <stager>: bytes: odd attempt"))
      << r[0].reason;
}

TEST(IsolatedRunner, ARefusedImplementationFailsEveryCase) {
  const auto cases = misbehaving_cases();
  ImplementationSource s;
  s.spec = "libbroken.so";
  s.refusal = "plugin 'libbroken.so' refused: build tag differs: compiler: plugin 'x', stagekit-conform 'y'";
  const auto r = run_cases(pointers(cases), s, RunOptions{});
  ASSERT_EQ(r.size(), cases.size());
  for (const CaseResult& c : r) {
    EXPECT_EQ(c.outcome, Outcome::fail);
    EXPECT_EQ(c.reason, s.refusal);
  }
}

TEST(IsolatedRunner, FactoryErrorsAndCrashesAreReportedPerCaseAndInDescribe) {
  ImplementationSource unsupported;
  unsupported.spec = "gpu-only";
  unsupported.factory = []() -> std::unique_ptr<Implementation> { throw Unsupported("needs a GPU"); };
  const std::vector<Case> cases = {make_case("t.pass", [](CaseContext&) {})};
  auto r = run_cases(pointers(cases), unsupported, RunOptions{});
  EXPECT_EQ(r[0].outcome, Outcome::not_supported);
  EXPECT_TRUE(contains(r[0].reason, "needs a GPU"));

  ImplementationSource crashing;
  crashing.spec = "crashing";
  crashing.factory = []() -> std::unique_ptr<Implementation> { std::abort(); };
  const ImplementationDescription d = describe_implementation(crashing, RunOptions{});
  EXPECT_TRUE(contains(d.error, "making the implementation crashed the process (died of signal")) << d.error;
  r = run_cases(pointers(cases), crashing, RunOptions{}, d.error);
  EXPECT_EQ(r[0].outcome, Outcome::fail);
  EXPECT_EQ(r[0].reason, d.error);

  const ImplementationDescription ok = describe_implementation(fake_source(), RunOptions{});
  EXPECT_EQ(ok.error, "");
  EXPECT_EQ(ok.implementation.at("name"), "fake");
}

TEST(IsolatedRunner, MemoryLimitTurnsALeakIntoAFailure) {
  if (kAsan) GTEST_SKIP() << "not_supported: AddressSanitizer reserves more address space than any RLIMIT_AS allows";
  if (kTsan) {
    GTEST_SKIP() << "not_supported: ThreadSanitizer's shadow mappings exceed any RLIMIT_AS, so its runtime cannot "
                    "allocate under one";
  }
  const std::vector<Case> cases = {make_case("t.leak", [](CaseContext&) {
    std::vector<std::unique_ptr<char[]>> leaked;
    for (int i = 0; i < 64; ++i) leaked.push_back(std::make_unique<char[]>(std::size_t{64} << 20));  // 4 GiB
  })};
  RunOptions o;
  o.memory_limit_bytes = std::size_t{1} << 30;
  const auto r = run_cases(pointers(cases), fake_source(), o);
  EXPECT_EQ(r[0].outcome, Outcome::fail);
  EXPECT_TRUE(contains(r[0].reason, "bad_alloc") || contains(r[0].reason, "allocation")) << r[0].reason;
}

TEST(IsolatedRunner, InProcessModeRunsTheSameCases) {
  const std::vector<Case> cases = {make_case("t.pass", [](CaseContext&) {}),
                                   make_case("t.fail", [](CaseContext& ctx) { ctx.check(false, "p", "q", "r"); })};
  RunOptions o;
  o.isolate = false;
  const auto r = run_cases(pointers(cases), fake_source(), o);
  EXPECT_EQ(r[0].outcome, Outcome::pass);
  EXPECT_EQ(r[1].outcome, Outcome::fail);
}

}  // namespace
}  // namespace stagekit::conformance
