// Stagers are independent: several, each on a thread of its own, stage at the same time (as separate
// PyTorch StateDictStagers can, e.g. a model's and an optimizer's DefaultStager workers).
#include <fmt/format.h>

#include <barrier>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "../../harness/fixtures.h"
#include "../../harness/verify/verify.h"

namespace stagekit::conformance {
namespace {

constexpr int kStagers = 4;
constexpr int kRounds = 6;
constexpr int kTensors = 8;

// Thread `t`'s state dict: eight 256 KiB tensors and a view of the first.
Value parallel_input(Device dev, int t) {
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < kTensors; ++i) {
    const Tensor layer = Tensor::random({64, 1024}, DType::float32, 601 + static_cast<std::uint64_t>(100 * t + i), dev);
    d->set(fmt::format("layer{}", i), layer);
    if (i == 0) d->set("layer0_t", layer.transpose(0, 1));
  }
  return Value(d);
}

// Four stagers, all made first, stage their own state dicts on four threads that start together, six
// rounds each, every tensor refilled with a value of that thread and round between rounds: every
// result must be exact (a stager sharing unguarded state with another, a process-wide bounce buffer
// or pool, hands out another thread's bytes).
void parallel_stagers_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  std::vector<Value> inputs;
  std::vector<std::unique_ptr<StagerUnderTest>> stagers;
  for (int t = 0; t < kStagers; ++t) {
    inputs.push_back(parallel_input(dev, t));
    stagers.push_back(ctx.make_stager(stager_config(cfg)));
  }
  std::vector<std::vector<Failure>> failures(kStagers);
  std::barrier start(kStagers);
  std::mutex verifying;
  std::vector<std::thread> threads;
  for (int t = 0; t < kStagers; ++t) {
    threads.emplace_back([&, t] {
      std::vector<Failure>& mine = failures[static_cast<std::size_t>(t)];
      start.arrive_and_wait();
      for (int round = 0; round < kRounds && mine.empty(); ++round) {
        const Value& sd = inputs[static_cast<std::size_t>(t)];
        if (round > 0) {
          for (int i = 0; i < kTensors; ++i) Tensor(sd[fmt::format("layer{}", i)].as_tensor()).fill_(t + round / 8.0);
        }
        try {
          const Value staged = stagers[static_cast<std::size_t>(t)]->stage(sd);
          // One verification at a time (its probes read this process's maps); the stages overlap.
          const std::lock_guard lock(verifying);
          for (Failure f : verify_staged(sd, staged, memory_expectation(cfg))) {
            f.detail = fmt::format("stager {} of {}, round {}: {}", t, kStagers, round, f.detail);
            mine.push_back(std::move(f));
          }
        } catch (const std::exception& e) {
          mine.push_back(
              Failure{"<stager>", "stage", fmt::format("stager {}, round {}: raised {}", t, round, e.what())});
        }
      }
    });
  }
  for (std::thread& th : threads) th.join();
  for (std::vector<Failure>& f : failures) ctx.add_failures(std::move(f));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(parallel_stagers) {
  add_matrix(registry, "parallel_stagers",
             "Four stagers, each on a thread of its own, stage their own state dicts (eight 256 KiB tensors and a "
             "view) at the same time, six rounds with the sources refilled between rounds: every result is exact",
             "strict (spec B.1.7: stagers are independent)", Profile::strict, kBothSources, kFourConfigs,
             parallel_stagers_case);
}

}  // namespace stagekit::conformance
