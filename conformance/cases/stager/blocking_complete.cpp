// A blocking stage() returns only once every byte is staged. The last bytes of a 24 MiB tensor are
// read the moment stage() returns, before anything else runs (no CUDA call, no probe, no comparison
// of the caller's tree, each of which could wait for the copy on the stager's behalf): a stager that
// leaves its copy running — a CUDA copy on a stream never synchronised, a host copy handed to a
// worker thread — hands out bytes that are not there yet.
#include <fmt/format.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <thread>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr std::size_t kTail = 256;

std::array<std::byte, kTail> tail_of(const Tensor& host_tensor) {
  std::array<std::byte, kTail> out{};
  const Storage& s = host_tensor.storage();
  std::memcpy(out.data(), static_cast<const std::byte*>(s.data()) + s.nbytes() - kTail, kTail);
  return out;
}

// Stages `sd` and reads the staged tail of "big" at once; checks it against `want`, then the whole dict.
void stage_and_read_at_once(CaseContext& ctx, StagerUnderTest& stager, const Value& sd,
                            const std::array<std::byte, kTail>& want, PinShare cfg, std::string_view when) {
  Value staged;
  try {
    staged = stager.stage(sd);
  } catch (const Error& e) {
    ctx.require(false, e.path().empty() ? "<stager>" : e.path(), fmt::format("stage ({})", when),
                fmt::format("raised {}: {}", error_code_name(e.code()), e.detail()));
  }
  // Nothing may run between the return of stage() and this read.
  Value big;
  try {
    big = staged["big"];
  } catch (const Error&) {  // NOLINT(bugprone-empty-catch): a missing entry is reported just below
  }
  const bool readable = big.is_tensor() && big.as_tensor().device().is_cpu() &&
                        big.as_tensor().storage().data() != nullptr && big.as_tensor().storage().nbytes() >= kTail;
  std::array<std::byte, kTail> seen{};
  if (readable) seen = tail_of(big.as_tensor());
  ctx.require(readable, "big", fmt::format("staged ({})", when), "no staged CPU tensor with a storage to read");
  // Bytes that differ at once but become right within half a second were still being copied; bytes that
  // stay wrong are a wrong copy, which the comparison below reports.
  bool arrived_late = false;
  for (int waited_ms = 0; seen != want && !arrived_late && waited_ms < 500; waited_ms += 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    arrived_late = tail_of(big.as_tensor()) == want;
  }
  ctx.check(!arrived_late, "big", "complete on return",
            fmt::format("{}: the last {} bytes of the staged storage, read as stage() returned, were not yet the "
                        "source's, and were a moment later: a blocking stage() returned before its copy finished",
                        when, kTail));
  ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
}

void blocking_complete_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto dict = std::make_shared<Dict>();
  dict->set("small", Tensor::random({64}, DType::float32, 1201, dev));
  Tensor big = Tensor::random({4096, 1536}, DType::float32, 1202, dev);  // 24 MiB, staged last
  dict->set("big", big);
  const Value sd(dict);
  auto stager = ctx.make_stager(stager_config(cfg));
  stage_and_read_at_once(ctx, *stager, sd, tail_of(big.to(Device::cpu())), cfg, "the first stage");
  big.fill_(-2.5);  // the second stage copies into the buffers of the first
  stage_and_read_at_once(ctx, *stager, sd, tail_of(big.to(Device::cpu())), cfg, "a stage into cached buffers");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(blocking_complete) {
  add_matrix(registry, "blocking_stage_complete_on_return",
             "A blocking stage() returns only once every byte is staged: the last bytes of a 24 MiB tensor, read "
             "the moment stage() returns (cold, and into cached buffers), are already the source's",
             "strict", Profile::strict, kBothSources, kFourConfigs, blocking_complete_case);
}

}  // namespace stagekit::conformance
