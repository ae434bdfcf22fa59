// Resource limits: page-locking refused by RLIMIT_MEMLOCK, shared memory capped by RLIMIT_FSIZE,
// host memory capped by RLIMIT_AS. Each runs in a forked child that sets the limit (and drops
// CAP_IPC_LOCK where needed); staging must raise resource_exhausted naming the path, release what it
// took, and the stager must then stage a dict that fits.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include <fmt/format.h>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"

namespace stagekit::conformance {
namespace {

using namespace std::chrono_literals;

std::string set_limit(int resource, rlim_t value, const char* name) {
  rlimit rl{};
  getrlimit(resource, &rl);
  rl.rlim_cur = value;
  if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < value) rl.rlim_cur = rl.rlim_max;
  if (setrlimit(resource, &rl) != 0) return fmt::format("setrlimit({}) failed: {}", name, std::strerror(errno));
  return {};
}

// Stages `big` (expecting resource_exhausted naming the whole `path`), then `small` (expecting
// success). The failed stage must leave no page-locked memory, descriptor or shared mapping behind.
std::string expect_exhaustion(Implementation& impl, const StagerConfig& config, const Value& big,
                              const std::string& path, const Value& small) {
  auto stager = impl.make_stager(config);
  if (!stager) return "make_stager returned nothing";
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  try {
    (void)stager->stage(big);
    return "staging beyond the limit did not raise";
  } catch (const Error& e) {
    if (e.code() != ErrorCode::resource_exhausted) {
      return fmt::format("expected resource_exhausted, got {}: {}", error_code_name(e.code()), e.what());
    }
    if (std::string(e.what()).find(path) == std::string::npos) {
      return fmt::format("the error does not name the path ({}): {}", path, e.what());
    }
  }
  if (const auto leaks = probe::leaks_since(before, probe::ProcessResources::snapshot()); !leaks.empty()) {
    return fmt::format("{} leaked by the failed stage: {}", leaks.front().what, leaks.front().detail);
  }
  try {
    const Value staged = stager->stage(small);
    const auto failures =
        verify_staged(small, staged, {config.pin_memory, config.share_memory, config.pin_memory_min_bytes, true});
    if (!failures.empty()) return "after the failure, a dict that fits staged wrongly: " + failures.front().str();
  } catch (const Error& e) {
    return fmt::format("after the failure, a dict that fits could not be staged: {}", e.what());
  }
  return {};
}

Value dict_of(const char* key, const Tensor& t) { return Value::dict({{"model", Value::dict({{key, t}})}}); }

void memlock_case(CaseContext& ctx) {
  const Value big = dict_of("weights_memlock", Tensor::random({256 * 1024}, DType::float32, 1));  // 1 MiB
  const Value small = dict_of("bias", Tensor::random({1024}, DType::float32, 2));                 // 4 KiB
  Implementation& impl = ctx.impl();
  const ChildOutcome out = run_in_child(
      [&]() -> std::string {
        if (geteuid() == 0 && setuid(65534) != 0) {
          return fmt::format("cannot drop root (and CAP_IPC_LOCK) with setuid(65534): {}", std::strerror(errno));
        }
        if (auto err = set_limit(RLIMIT_MEMLOCK, 64 * 1024, "RLIMIT_MEMLOCK"); !err.empty()) return err;
        return expect_exhaustion(impl, {true, false, 5}, big, "model.weights_memlock", small);
      },
      60s);
  ctx.check(out.ok, "model.weights_memlock", "page-locking refused by the OS", out.message);
}

void shared_memory_case(CaseContext& ctx) {
  const Value big = dict_of("weights_shm", Tensor::random({256 * 1024}, DType::float32, 3));  // 1 MiB
  const Value small = dict_of("bias", Tensor::random({1024}, DType::float32, 4));
  Implementation& impl = ctx.impl();
  const ChildOutcome out = run_in_child(
      [&]() -> std::string {
        signal(SIGXFSZ, SIG_IGN);  // make the limit an error (EFBIG), not a signal
        if (auto err = set_limit(RLIMIT_FSIZE, 64 * 1024, "RLIMIT_FSIZE"); !err.empty()) return err;
        return expect_exhaustion(impl, {false, true, 5}, big, "model.weights_shm", small);
      },
      60s);
  ctx.check(out.ok, "model.weights_shm", "shared memory exhausted", out.message);
}

void host_memory_case(CaseContext& ctx) {
  // 1 GiB of address space for the source; its pages are never touched (zero pages).
  const Tensor source = Tensor::empty({256 * 1024 * 1024}, DType::float32);
  const Value big = dict_of("weights_host", source);
  const Value small = dict_of("bias", Tensor::random({1024}, DType::float32, 5));
  Implementation& impl = ctx.impl();
  const ChildOutcome out = run_in_child(
      [&]() -> std::string {
        // Room for ordinary allocations and a few threads, far less than another 1 GiB.
        const std::uint64_t vm = [] {
          FILE* f = std::fopen("/proc/self/statm", "r");
          unsigned long long pages = 0;
          if (f != nullptr) {
            if (std::fscanf(f, "%llu", &pages) != 1) pages = 0;
            std::fclose(f);
          }
          return pages * static_cast<std::uint64_t>(sysconf(_SC_PAGESIZE));
        }();
        if (auto err = set_limit(RLIMIT_AS, vm + (std::uint64_t{256} << 20), "RLIMIT_AS"); !err.empty()) return err;
        return expect_exhaustion(impl, {false, false, 5}, big, "model.weights_host", small);
      },
      120s);
  ctx.check(out.ok, "model.weights_host", "host memory exhausted", out.message);
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(limits) {
  Requirements memlock;
  memlock.pin_memory = true;
  memlock.no_cuda_device = true;
  add_stager_case(registry, CaseName("limit", {"memlock_refused"}), Source::cpu, PinShare{true, false},
                  "With RLIMIT_MEMLOCK at 64 KiB and no CAP_IPC_LOCK, pinning 1 MiB raises resource_exhausted naming "
                  "the path, leaks nothing, and a 4 KiB dict still stages pinned",
                  "strict", Profile::strict, memlock, memlock_case);
  Requirements shm;
  shm.share_memory = true;
  add_stager_case(registry, CaseName("limit", {"shared_memory_exhausted"}), Source::cpu, PinShare{false, true},
                  "With shared-memory files capped at 64 KiB (RLIMIT_FSIZE), sharing 1 MiB raises resource_exhausted "
                  "naming the path, leaks nothing, and a small dict still stages shared",
                  "strict", Profile::strict, shm, shared_memory_case);
  add_stager_case(registry, CaseName("limit", {"host_memory_exhausted"}), Source::cpu, PinShare{false, false},
                  "With address space capped (RLIMIT_AS) below what a 1 GiB copy needs, staging raises "
                  "resource_exhausted naming the path, and a small dict still stages",
                  "strict", Profile::strict, {}, host_memory_case);
}

}  // namespace stagekit::conformance
