// Spec C.2.3: the staging copies are ordered after the work the caller queued on its current stream
// (stagekit::cuda::current_stream(); through the torch route, torch.cuda.current_stream()). The
// caller's stream is held back by a host function for 300 ms, then copies new values into the source;
// stage() is called at once, with nothing synchronised. A stager whose copies run on a stream of its
// own that does not wait for the caller's (upstream's DefaultStager, whose staging stream waits for
// nothing) stages the old values. The stage judged is a warm one: a cold stage allocates, and an
// allocation may synchronise the device by itself.
#include <fmt/format.h>

#include <chrono>
#include <functional>
#include <memory>
#include <thread>

#include "../../harness/fixtures.h"
#include "stagekit/core/cuda.h"

namespace stagekit::conformance {
namespace {

constexpr std::int64_t kProducerElements = std::int64_t{8} * 1024 * 1024;  // 32 MiB of float32
constexpr auto kProducerHold = std::chrono::milliseconds(300);

void hold_the_producer(void*) { std::this_thread::sleep_for(kProducerHold); }

enum class ProducerStageMode { blocking, non_blocking, default_stager };

using StageFunction = std::function<Value(const Value&, std::string_view)>;

// One stage in `mode`, returning the staged dict once every copy is complete.
StageFunction stage_function(CaseContext& ctx, PinShare cfg, ProducerStageMode mode) {
  if (mode == ProducerStageMode::default_stager) {
    std::shared_ptr<AsyncStagerUnderTest> stager;
    try {
      stager = ctx.impl().make_default_stager(StagingOptions{cfg.pin, cfg.share, true, true});
    } catch (const std::exception& e) {
      ctx.require(false, "<implementation>", "make_default_stager", e.what());
    }
    ctx.require(stager != nullptr, "<implementation>", "make_default_stager", "returned no stager");
    return [&ctx, stager](const Value& sd, std::string_view what) {
      StageReturn r;
      try {
        r = stager->stage(sd);
        if (r.is_future()) return r.future.get();
      } catch (const std::exception& e) {
        ctx.require(false, "<stager>", "stage", fmt::format("{}: {}", what, e.what()));
      }
      ctx.require(false, "<stager>", "stage() returns",
                  fmt::format("{}: stage() returned the state dict with use_async_staging=true", what));
      return Value();
    };
  }
  std::shared_ptr<StagerUnderTest> stager = ctx.make_stager(stager_config(cfg));
  if (mode == ProducerStageMode::blocking) {
    return [&ctx, stager](const Value& sd, std::string_view what) { return stage_or_fail(ctx, *stager, sd, what); };
  }
  return [&ctx, stager](const Value& sd, std::string_view what) {
    try {
      const std::unique_ptr<PendingResult> pending = stager->stage_async(sd);
      ctx.require(pending != nullptr, "<stager>", "stage_async", fmt::format("{}: returned no handle", what));
      return pending->wait();
    } catch (const Error& e) {
      ctx.require(false, e.path().empty() ? "<stager>" : e.path(), "stage_async",
                  fmt::format("{}: raised {}: {}", what, error_code_name(e.code()), e.detail()));
    }
    return Value();
  };
}

void producer_stream_case(CaseContext& ctx, PinShare cfg, ProducerStageMode mode) {
  const Device dev = Device::cuda(0);
  Tensor weights = Tensor::random({kProducerElements}, DType::float32, 2101, dev);
  const Tensor next_values = Tensor::random({kProducerElements}, DType::float32, 2102, dev);
  const Value sd = Value::dict({{"weights", weights}, {"bias", Tensor::random({64}, DType::float32, 2103, dev)}});
  const StageFunction stage = stage_function(ctx, cfg, mode);
  const Value cold = stage(sd, "the cold stage");
  ctx.add_failures(verify_staged(sd, cold, memory_expectation(cfg)));
  const Tensor old_values = weights.to(Device::cpu());

  cuda::Stream producer(0);
  Value warm;
  {
    const cuda::StreamGuard current(producer.handle());
    cuda::launch_host_func(producer.handle(), &hold_the_producer, nullptr);
    cuda::memcpy_async(weights.data_ptr(), next_values.data_ptr(), weights.addressed_bytes(), producer.handle());
    warm = stage(sd, "the stage called right after the write queued on the caller's current stream");
  }
  producer.synchronize();
  const Value staged = warm.kind() == Value::Kind::dict ? warm["weights"] : Value();
  ctx.check(!(staged.is_tensor() && Tensor::equal(staged.as_tensor(), old_values)), "weights",
            "ordered after the caller's stream",
            fmt::format("the staged tensor holds the values from before the write the caller had queued on its current "
                        "stream ({} ms behind a host function) when it called stage(): the staging copies do not wait "
                        "for the caller's stream (spec C.2.3)",
                        kProducerHold.count()));
  ctx.add_failures(verify_staged(sd, warm, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(producer_stream) {
  static constexpr Source kCudaSources[] = {Source::cuda};
  struct Mode {
    const char* name;
    ProducerStageMode mode;
    const char* how;
    Requirements extra;
  };
  static const Mode kModes[] = {
      {"stage", ProducerStageMode::blocking, "stage()", {}},
      {"stage_async", ProducerStageMode::non_blocking, "stage_async() (then waited on)", {.non_blocking = true}},
      {"default_stager",
       ProducerStageMode::default_stager,
       "an asynchronous DefaultStager with non-blocking copies (its future waited on)",
       {.async_staging = true}},
  };
  for (const Mode& m : kModes) {
    add_matrix(
        registry, CaseName("waits_for_producer_stream", {m.name}),
        fmt::format("A source written on the caller's current stream, the write held back 300 ms by a host function, "
                    "then staged at once by {}, warm and with nothing synchronised: the staged values are the written "
                    "ones (the staging copies wait for the caller's stream)",
                    m.how),
        "strict (spec C.2.3)", Profile::strict, kCudaSources, kFourConfigs,
        [mode = m.mode](CaseContext& ctx, Source, PinShare c) { producer_stream_case(ctx, c, mode); }, m.extra);
  }
}

}  // namespace stagekit::conformance
