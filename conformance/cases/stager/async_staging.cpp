// Spec B.3 and C.2: PyTorch's asynchronous staging surface — DefaultStager (StagingOptions) and
// BlockingAsyncStager — reached through Capabilities::async_staging.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"

namespace stagekit::conformance {
namespace {

constexpr Requirements kAsyncStaging{.async_staging = true};

bool future_ready(const std::shared_future<Value>& f) {
  return f.valid() && f.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

// What one stage() returned: a future in async mode, the dict itself otherwise.
StageReturn stage_or_fail(CaseContext& ctx, AsyncStagerUnderTest& stager, const Value& sd, bool async,
                          std::string_view what) {
  StageReturn r;
  try {
    r = stager.stage(sd);
  } catch (const std::exception& e) {
    ctx.require(false, "<stager>", "stage", fmt::format("{}: stage() raised: {}", what, e.what()));
  }
  ctx.require(r.is_future() == async, "<stager>", "stage() returns",
              fmt::format("{}: stage() returned {} with use_async_staging={}", what,
                          r.is_future() ? "a future" : "the state dict", async));
  return r;
}

// The staged dict of what stage_or_fail() returned (waiting for the future in async mode).
Value result_or_fail(CaseContext& ctx, const StageReturn& r, bool async, std::string_view what) {
  if (!async) {
    ctx.require(r.state_dict.has_value(), "<stager>", "stage() returns", fmt::format("{}: no state dict", what));
    return *r.state_dict;
  }
  try {
    return r.future.get();
  } catch (const std::exception& e) {
    ctx.require(false, "<stager>", "stage", fmt::format("{}: the staging future raised: {}", what, e.what()));
  }
  return {};
}

// The staged dict of one stage(): a future in async mode, the dict itself otherwise.
Value staged_or_fail(CaseContext& ctx, AsyncStagerUnderTest& stager, const Value& sd, bool async,
                     std::string_view what) {
  return result_or_fail(ctx, stage_or_fail(ctx, stager, sd, async, what), async, what);
}

// C.2.2, C.2.7: what stage() returns in each mode, the memory it stages to, and buffers reused
// across stages (never dropped after a stage).
void default_stager_case(CaseContext& ctx, Source src, PinShare cfg, bool async, bool non_blocking) {
  ViewsInput in = make_views_input(source_device(src), 301);
  auto stager = make_default_stager_or_fail(ctx, StagingOptions{cfg.pin, cfg.share, async, non_blocking});
  const Value first = staged_or_fail(ctx, *stager, in.state_dict, async, "first stage");
  ctx.add_failures(verify_staged(in.state_dict, first, memory_expectation(cfg)));
  in.tensor1.fill_(-3.0);
  const Value second = staged_or_fail(ctx, *stager, in.state_dict, async, "second stage");
  ctx.add_failures(verify_staged(in.state_dict, second, memory_expectation(cfg)));
  ctx.check(first["tensor1"].as_tensor().storage().data() == second["tensor1"].as_tensor().storage().data(), "tensor1",
            "buffer reuse", "the second stage did not reuse the first stage's buffer");
  ctx.check(all_equal(first["tensor1"].as_tensor(), -3.0), "tensor1", "aliasing of earlier results",
            "the result of the first stage does not show the values of the second (it must alias the buffers)");
  try {
    stager->synchronize_staging();
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "synchronize_staging", e.what());
  }
  ctx.check(stager->should_synchronize_after_execute(), "<stager>", "should_synchronize_after_execute",
            "a DefaultStager must ask to be synchronised after execute (AsyncStager's default)");
  stager->close();
}

// C.2.1: the all-default options need an accelerator for the non-blocking copy.
void needs_accelerator_case(CaseContext& ctx, Source, PinShare) {
  bool raised = false;
  try {
    (void)ctx.impl().make_default_stager(StagingOptions{});
  } catch (const Error& e) {
    raised = true;
    std::string message = e.what();
    std::transform(message.begin(), message.end(), message.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    ctx.check(message.find("non-blocking") != std::string::npos || message.find("non_blocking") != std::string::npos,
              "<error>", "error names the option",
              fmt::format("the error does not name the non-blocking copy: {}", e.what()));
  }
  ctx.check(raised, "<implementation>", "make_default_stager",
            "StagingOptions() (use_non_blocking_copy=true) on a machine without an accelerator did not raise");
  auto blocking = make_default_stager_or_fail(ctx, StagingOptions{true, true, true, false});
  blocking->close();
}

// C.2.2: an error of an asynchronous stage surfaces from the future and synchronize_staging(), not
// from stage(); a synchronous stage raises it. The stager stays usable.
void errors_surface_case(CaseContext& ctx, Source src, PinShare cfg, bool async) {
  const Device dev = source_device(src);
  const Value bad = Value::dict({{"weight", Tensor::random({8, 8}, DType::float32, 5, dev)},
                                 {"layer0", Value::dict({{"lock", Value::opaque("threading.Lock")}})}});
  auto stager = make_default_stager_or_fail(ctx, StagingOptions{cfg.pin, cfg.share, async, false});
  std::string raised_by = "nowhere";
  auto check_path = [&ctx](const Error& e) {
    ctx.check(std::string(e.what()).find("layer0.lock") != std::string::npos, "<error>", "error names the path",
              fmt::format("the message does not name layer0.lock: {}", e.what()));
  };
  StageReturn r;
  try {
    r = stager->stage(bad);
  } catch (const Error& e) {
    raised_by = "stage()";
    check_path(e);
  }
  if (r.is_future()) {
    try {
      (void)r.future.get();
    } catch (const Error& e) {
      raised_by = "the future";
      check_path(e);
    }
  }
  const std::string expected = async ? "the future" : "stage()";
  ctx.check(raised_by == expected, "layer0.lock", "where the error surfaces",
            fmt::format("expected the error from {}, got it from {}", expected, raised_by));
  if (async) {
    // It re-raises the failed stage's error at every call until the next stage, not only once.
    for (const char* call : {"first", "second"}) {
      bool sync_raised = false;
      try {
        stager->synchronize_staging();
      } catch (const Error&) {
        sync_raised = true;
      }
      ctx.check(sync_raised, "<stager>", "synchronize_staging",
                fmt::format("the {} call did not re-raise the failed stage's error", call));
    }
  } else {
    // A synchronous stage's error came from stage(): there is no asynchronous stage to re-raise.
    try {
      stager->synchronize_staging();
    } catch (const std::exception& e) {
      ctx.check(false, "<stager>", "synchronize_staging after a failed synchronous stage",
                fmt::format("raised although no asynchronous stage failed: {}", e.what()));
    }
  }
  // The stager stays usable: a good stage after the failed one stages exactly, and
  // synchronize_staging() after it returns (spec B.3.3: it waits for the last stage and re-raises
  // that stage's error only; the failure before is not raised again).
  const Value good = Value::dict({{"weight", Tensor::random({8, 8}, DType::float32, 6, dev)}});
  const StageReturn next = stage_or_fail(ctx, *stager, good, async, "after the failed stage");
  try {
    stager->synchronize_staging();
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "synchronize_staging after a good stage",
              fmt::format("raised although the last stage succeeded: {}", e.what()));
  }
  const Value staged = result_or_fail(ctx, next, async, "after the failed stage");
  ctx.add_failures(verify_staged(good, staged, memory_expectation(cfg)));
  stager->close();
  if (!async) return;
  // close() keeps a failed stage's error for synchronize_staging() (spec B.3.3).
  auto closing = make_default_stager_or_fail(ctx, StagingOptions{cfg.pin, cfg.share, async, false});
  try {
    const StageReturn failed = closing->stage(bad);
    if (failed.is_future()) failed.future.wait();
  } catch (const Error&) {
  }
  try {
    closing->close();
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "close after a failed stage", fmt::format("close() raised: {}", e.what()));
  }
  bool closed_raised = false;
  try {
    closing->synchronize_staging();
  } catch (const Error&) {
    closed_raised = true;
  }
  ctx.check(closed_raised, "<stager>", "synchronize_staging after close",
            "after a failed stage and close(), synchronize_staging() did not re-raise the failed stage's error");
}

// A closed stager refuses stage() with invalid_argument (a misuse, not a staging failure: the caller's
// error, spec B.3.1), returns from a second close(), and is then destroyed like any other.
void check_closed(CaseContext& ctx, std::unique_ptr<AsyncStagerUnderTest> stager, const Value& sample,
                  std::string_view which) {
  const std::string prefix = which.empty() ? std::string() : fmt::format("{}: ", which);
  bool raised = false;
  try {
    (void)stager->stage(sample);
  } catch (const Error& e) {
    raised = true;
    ctx.check(e.code() == ErrorCode::invalid_argument, "<stager>", "stage after close",
              fmt::format("{}stage() after close() raised {}, not invalid_argument: {}", prefix,
                          error_code_name(e.code()), e.what()));
  }
  ctx.check(raised, "<stager>", "stage after close", fmt::format("{}stage() after close() did not raise", prefix));
  try {
    stager->close();
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "close twice", fmt::format("{}a second close() raised: {}", prefix, e.what()));
  }
  stager.reset();
}

// Leaks since `before` and, with cache_stats, a cache that is not empty: each fails the case. A
// DefaultStager of an implementation that declares cache_stats must report them (`stats_required`); a
// BlockingAsyncStager may not.
void check_released(CaseContext& ctx, const probe::ProcessResources& before, const AsyncStagerUnderTest& stager,
                    std::string_view what, bool stats_required) {
  for (const probe::Leak& leak : probe::leaks_since(before, probe::ProcessResources::snapshot())) {
    ctx.check(false, "<process>", leak.what + " released", fmt::format("{}: {}", what, leak.detail));
  }
  if (!ctx.capabilities().cache_stats) return;
  const std::optional<CacheStats> stats = stager.cache_stats();
  if (!stats && !stats_required) return;
  ctx.check(stats && stats->cached_storages == 0 && stats->cached_bytes == 0 && stats->pinned_bytes == 0 &&
                stats->shared_bytes == 0,
            "<stager>", "cache released",
            stats ? fmt::format("{}: the cache still holds {} storages, {} bytes ({} pinned, {} shared)", what,
                                stats->cached_storages, stats->cached_bytes, stats->pinned_bytes, stats->shared_bytes)
                  : fmt::format("{}: no cache_stats although the implementation declares them", what));
}

Value async_input_tensors(Device dev, int count, std::int64_t elements, std::uint64_t seed) {
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < count; ++i) {
    d->set(fmt::format("layer{}", i),
           Tensor::random({elements}, DType::float32, seed + static_cast<std::uint64_t>(i), dev));
  }
  return Value(d);
}

// C.2.6 and the order of stages: close() waits for every queued and running stage; a later stage's
// future is never ready before an earlier one's; stage() after close() raises; close() is idempotent.
void close_waits_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value big = async_input_tensors(dev, 16, std::int64_t{1} << 18, 311);  // 16 MiB
  const Value small = async_input_tensors(dev, 2, 16, 331);
  auto stager = make_default_stager_or_fail(ctx, StagingOptions{cfg.pin, cfg.share, true, false});
  const StageReturn a = stager->stage(big);
  const StageReturn b = stager->stage(small);
  ctx.require(a.is_future() && b.is_future(), "<stager>", "stage() returns",
              "stage() with use_async_staging did not return a future");
  b.future.wait();
  ctx.check(future_ready(a.future), "<stager>", "stages in order",
            "the second stage completed while the first was still running (stages must not overlap)");
  // Three stages of 64 MiB queued (the first one cold) keep the worker busy for long enough that a
  // synchronize_staging() returning at once is seen even on a loaded machine.
  const Value huge = async_input_tensors(dev, 16, std::int64_t{1} << 20, 341);
  std::vector<StageReturn> queued;
  for (int i = 0; i < 3; ++i) queued.push_back(stager->stage(huge));
  try {
    stager->synchronize_staging();
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "synchronize_staging", e.what());
  }
  ctx.check(future_ready(queued.back().future), "<stager>", "synchronize_staging waits",
            "synchronize_staging() returned while the last stage was still in flight");
  // close() with a stage running and more queued behind it: every one completes first.
  const StageReturn c = stager->stage(big);
  std::vector<StageReturn> closing;
  for (int i = 0; i < 2; ++i) closing.push_back(stager->stage(huge));
  stager->close();
  ctx.check(future_ready(c.future) && std::all_of(closing.begin(), closing.end(),
                                                  [](const StageReturn& q) { return future_ready(q.future); }),
            "<stager>", "close waits",
            "close() returned while a stage was still running or queued (it must wait for every one)");
  try {
    ctx.add_failures(verify_staged(big, a.future.get(), memory_expectation(cfg)));
    ctx.add_failures(verify_staged(small, b.future.get(), memory_expectation(cfg)));
    ctx.add_failures(verify_staged(big, c.future.get(), memory_expectation(cfg)));
  } catch (const std::exception& e) {
    ctx.check(false, "<stager>", "stage", fmt::format("a staging future raised: {}", e.what()));
  }
  check_closed(ctx, std::move(stager), small, "");
}

// B.3.3: close() closes the StateDictStager inside, so a closed DefaultStager that is still alive
// holds no buffer once its results are dropped: page-locked memory, shared mappings, descriptors and
// shared-memory objects are back where they were before it was made, and its cache (cache_stats) is
// empty. An asynchronous and a synchronous stager in turn (a synchronous one must not keep its last
// result either).
void close_releases_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Value sd = async_input_tensors(dev, 4, std::int64_t{1} << 18, 351);  // 4 MiB
  for (const bool async : {true, false}) {
    const char* mode = async ? "asynchronous" : "synchronous";
    const probe::ProcessResources before = probe::ProcessResources::snapshot();
    auto stager = make_default_stager_or_fail(ctx, StagingOptions{cfg.pin, cfg.share, async, false});
    for (int i = 0; i < 2; ++i) {
      const Value staged = staged_or_fail(ctx, *stager, sd, async, fmt::format("{} stage {}", mode, i));
      if (i == 0) ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
    }
    stager->close();
    check_released(ctx, before, *stager,
                   fmt::format("after close() with the results dropped, the {} DefaultStager still alive", mode),
                   /*stats_required=*/true);
  }
}

// C.2.8: BlockingAsyncStager, with and without its cache.
Value blocking_input(Device dev, std::uint64_t seed) {
  return Value::dict({{"weight", Tensor::random({8, 8}, DType::float32, seed, dev)},
                      {"bias", Tensor::random({8}, DType::float32, seed + 1, dev)},
                      {"step", Value(std::int64_t{7})},
                      {"nested", Value::dict({{"m", Tensor::random({4, 4}, DType::bfloat16, seed + 2, dev)}})}});
}

std::unique_ptr<AsyncStagerUnderTest> make_blocking_stager(CaseContext& ctx, bool cache, bool type_check = false) {
  std::unique_ptr<AsyncStagerUnderTest> stager;
  try {
    stager = ctx.impl().make_blocking_async_stager(BlockingAsyncStagerConfig{cache, type_check});
  } catch (const std::exception& e) {
    ctx.require(false, "<implementation>", "make_blocking_async_stager", e.what());
  }
  ctx.require(stager != nullptr, "<implementation>", "make_blocking_async_stager", "returned no stager");
  return stager;
}

// C.2.8, B.3.4: type_check. Without a cache the stager's option decides whether an object leaf is
// refused (invalid_argument naming its path) or staged; with a cache every stage is type-checked
// whatever the option says (upstream copies into its cache with type_check=True).
void blocking_async_type_check_case(CaseContext& ctx, Source src, PinShare) {
  const Device dev = source_device(src);
  const Tensor t = Tensor::random({8}, DType::float32, 361, dev);
  const Value sd =
      Value::dict({{"weight", t}, {"opt", Value::dict({{"state", Value::object("AdamState", {{"step", 3}}, false)}})}});
  struct Mode {
    const char* what;
    bool cache;
    bool type_check;
    bool refused;
  };
  for (const Mode& m : {Mode{"without a cache, type_check=true", false, true, true},
                        Mode{"without a cache, type_check=false", false, false, false},
                        Mode{"with a cache, type_check=false", true, false, true}}) {
    auto stager = make_blocking_stager(ctx, m.cache, m.type_check);
    std::optional<Value> staged;
    std::string refusal;
    try {
      const StageReturn r = stager->stage(sd);
      if (r.state_dict) staged = *r.state_dict;
    } catch (const InvalidArgument& e) {
      refusal = e.what();
      ctx.check(std::string(e.what()).find("opt.state") != std::string::npos, "opt.state", "error names the path",
                fmt::format("{}: the refusal does not name opt.state: {}", m.what, e.what()));
    } catch (const std::exception& e) {
      refusal = e.what();
      ctx.check(false, "opt.state", "error kind",
                fmt::format("{}: expected an invalid_argument refusal, got: {}", m.what, e.what()));
    }
    // Spec B.3.4: synchronize_staging() is a no-op, after a refused stage too.
    try {
      stager->synchronize_staging();
    } catch (const std::exception& e) {
      ctx.check(false, "<stager>", "synchronize_staging",
                fmt::format("{}: synchronize_staging() raised (it is a no-op): {}", m.what, e.what()));
    }
    if (m.refused) {
      ctx.check(!refusal.empty(), "opt.state", "type_check",
                fmt::format("{}: an object leaf was staged; it must be refused", m.what));
    } else {
      ctx.check(refusal.empty() && staged.has_value(), "opt.state", "type_check",
                fmt::format("{}: an object leaf must be staged, got: {}", m.what,
                            refusal.empty() ? "no state dict" : refusal));
      if (staged) {
        ctx.check(staged->kind() == Value::Kind::dict && (*staged)["opt"]["state"].kind() == Value::Kind::object &&
                      (*staged)["opt"]["state"]["step"].kind() == Value::Kind::integer &&
                      (*staged)["opt"]["state"]["step"].as_int() == 3,
                  "opt.state", "type_check=false", fmt::format("{}: the object leaf was not staged as it is", m.what));
        ctx.check(staged->kind() == Value::Kind::dict && (*staged)["weight"].is_tensor() &&
                      Tensor::equal((*staged)["weight"].as_tensor().to(Device::cpu()), t.to(Device::cpu())),
                  "weight", "values", fmt::format("{}: the staged tensor is not the source's copy", m.what));
      }
    }
    stager->close();
  }
}

// Spec B.3.4: a cached BlockingAsyncStager refuses `other` (`what`), whose structure differs from the
// cache's at `key`, with the caller's error (invalid_argument) naming that key.
void expect_structure_refused(CaseContext& ctx, AsyncStagerUnderTest& stager, const Value& other, const char* key,
                              std::string_view what) {
  bool raised = false;
  try {
    (void)stager.stage(other);
  } catch (const Error& e) {
    raised = true;
    ctx.check(e.code() == ErrorCode::invalid_argument, key, "error kind",
              fmt::format("{} raised {}, not invalid_argument: {}", what, error_code_name(e.code()), e.what()));
    ctx.check(std::string(e.what()).find(key) != std::string::npos, key, "error names the path",
              fmt::format("the refusal of {} does not name {}: {}", what, key, e.what()));
  }
  ctx.check(raised, "<stager>", "structure change", fmt::format("{} was staged into the cache without an error", what));
}

// Two stages of `sd` and, with a cache, two refused ones; every result is dropped on return.
void blocking_stages(CaseContext& ctx, AsyncStagerUnderTest& stager, Value& sd, PinShare cfg, bool cache) {
  const Device dev = sd["weight"].as_tensor().device();
  ctx.check(!stager.should_synchronize_after_execute(), "<stager>", "should_synchronize_after_execute",
            "a BlockingAsyncStager must not ask to be synchronised after execute");
  const Value first = staged_or_fail(ctx, stager, sd, false, "first stage");
  ctx.add_failures(verify_staged(sd, first, memory_expectation(cfg)));
  // A training step: new tensor values and a new step, in the same structure.
  Tensor(sd["weight"].as_tensor()).fill_(2.5);
  sd.as_dict().set("step", Value(std::int64_t{8}));
  const Value second = staged_or_fail(ctx, stager, sd, false, "second stage");
  ctx.add_failures(verify_staged(sd, second, memory_expectation(cfg)));
  // Spec B.3.4, B.6.6: every stage returns a new container structure whose non-tensor leaves are that
  // stage's (with a cache too: only the tensors are the cache's); the first result keeps its step.
  ctx.check(first.identity() != second.identity() && first["nested"].identity() != second["nested"].identity(),
            "<root>", "new structure", "the second stage returned the first stage's containers");
  ctx.check(first["step"].kind() == Value::Kind::integer && first["step"].as_int() == 7, "step", "earlier results",
            "the first result's step changed when the second stage ran (expected 7, the step it was staged with)");
  const bool same = first["weight"].as_tensor().storage().data() == second["weight"].as_tensor().storage().data();
  if (cache) {
    ctx.check(same, "weight", "cache", "the second stage did not copy into the first stage's (cached) buffer");
    ctx.check(all_equal(first["weight"].as_tensor(), 2.5), "weight", "cache",
              "the first result does not show the second stage's values (it must alias the cache)");
    // The same state dict with one key more: the only path at which the structures differ is extra.
    auto grown = std::make_shared<Dict>(sd.as_dict());
    grown->set("extra", Tensor::random({2}, DType::float32, 9, dev));
    expect_structure_refused(ctx, stager, Value(grown), "extra", "a state dict of another structure");
    // The same state dict with one key fewer: the cached bias is missing from it.
    auto shrunk = std::make_shared<Dict>();
    for (const auto& [k, item] : sd.as_dict().entries()) {
      if (!(k == DictKey(std::string("bias")))) shrunk->set(k, item);
    }
    expect_structure_refused(ctx, stager, Value(shrunk), "bias", "a state dict with one key fewer");
    // Spec B.3.4: synchronize_staging() is a no-op, after a refused stage too.
    try {
      stager.synchronize_staging();
    } catch (const std::exception& e) {
      ctx.check(false, "<stager>", "synchronize_staging",
                fmt::format("synchronize_staging() raised after a refused stage (it is a no-op): {}", e.what()));
    }
  } else {
    ctx.check(!same, "weight", "fresh buffers", "the second stage returned the first stage's buffer");
    ctx.check(!all_equal(first["weight"].as_tensor(), 2.5), "weight", "fresh buffers",
              "the first result changed when the source was staged again");
  }
}

// C.2.8 and the AsyncStager contract: close() releases the cache (its pinned pages too) once the
// results are dropped, and the closed stager refuses stage() (upstream's close() is a no-op).
void blocking_async_stager_case(CaseContext& ctx, Source src, PinShare cfg, bool cache) {
  Value sd = blocking_input(source_device(src), 341);
  const probe::ProcessResources before = probe::ProcessResources::snapshot();
  auto stager = make_blocking_stager(ctx, cache);
  blocking_stages(ctx, *stager, sd, cfg, cache);
  stager->close();
  check_released(ctx, before, *stager, "after close() with the results dropped, the BlockingAsyncStager still alive",
                 /*stats_required=*/false);
  check_closed(ctx, std::move(stager), sd, "");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(async_staging) {
  struct Mode {
    const char* name;
    bool async;
    bool non_blocking;
  };
  static constexpr Mode kModes[] = {{"sync", false, false}, {"async", true, false}};
  static constexpr Mode kNonBlockingModes[] = {{"sync_non_blocking", false, true}, {"async_non_blocking", true, true}};
  static constexpr Source kCudaOnly[] = {Source::cuda};
  static constexpr Source kCpuOnly[] = {Source::cpu};
  static constexpr PinShare kPageable[] = {PinShare{false, false}};
  static constexpr PinShare kPinned[] = {PinShare{true, false}};
  auto register_modes = [&registry](std::span<const Mode> modes, std::span<const Source> sources) {
    for (const Mode& m : modes) {
      add_matrix(
          registry, CaseName("default_stager", {m.name}),
          fmt::format("DefaultStager ({}): stage() returns {}; the result is exact, in memory of the configured "
                      "kind; a second stage of the same sources refills the same buffers",
                      m.name, m.async ? "a future" : "the state dict"),
          "strict (spec B.3.3, C.2.2, C.2.7)", Profile::strict, sources, kFourConfigs,
          [m](CaseContext& ctx, Source s, PinShare c) { default_stager_case(ctx, s, c, m.async, m.non_blocking); },
          kAsyncStaging);
    }
  };
  register_modes(kModes, kBothSources);
  register_modes(kNonBlockingModes, kCudaOnly);
  add_matrix(registry, "default_stager_needs_accelerator",
             "Without an accelerator, a DefaultStager with the default StagingOptions (non-blocking copy) cannot be "
             "made: the error names the non-blocking copy; with use_non_blocking_copy=false it can",
             "strict (spec B.3.3, C.2.1)", Profile::strict, kCpuOnly, kPageable, needs_accelerator_case,
             Requirements{.no_cuda_device = true, .async_staging = true});
  for (const Mode& m : kModes) {
    add_matrix(
        registry, CaseName("default_stager_errors_surface", {m.name}),
        fmt::format("A DefaultStager ({}) staging a lock raises {} naming layer0.lock, and stays usable: a good "
                    "stage after it is exact and synchronize_staging() after that good stage does not raise",
                    m.name,
                    m.async ? "from the future and from synchronize_staging() at every call (after close() too), "
                              "not from stage(),"
                            : "from stage() (synchronize_staging() right after it returns)"),
        "strict (spec C.2.2)", Profile::strict, kBothSources, kPageable,
        [m](CaseContext& ctx, Source s, PinShare c) { errors_surface_case(ctx, s, c, m.async); }, kAsyncStaging);
  }
  add_matrix(registry, "default_stager_close_waits",
             "An asynchronous DefaultStager runs stages one at a time in order; synchronize_staging() returns only "
             "after the last stage completed, and close() only after every queued stage completed, exactly; stage() "
             "after close() raises invalid_argument; a second close() returns and the closed stager is destroyed",
             "strict (spec C.2.6)", Profile::strict, kBothSources, kFourConfigs, close_waits_case, kAsyncStaging);
  // Pageable buffers going back to the heap cannot be seen from outside: the configurations whose memory
  // is page-locked or shared are probed; the pageable one needs the implementation's own count.
  constexpr std::string_view kCloseReleases =
      "An asynchronous and then a synchronous DefaultStager, each closed but still alive with its results dropped, "
      "holds no page-locked memory, shared mapping, descriptor or shared-memory object, and (with cache_stats) an "
      "empty cache: close() closes the stager inside";
  add_matrix(registry, "default_stager_close_releases", kCloseReleases, "strict (spec B.3.3)", Profile::strict,
             kBothSources, kProbedConfigs, close_releases_case, kAsyncStaging);
  add_matrix(registry, "default_stager_close_releases",
             std::string(kCloseReleases) +
                 " (pageable memory counted by cache_stats: an implementation without them is not_supported)",
             "strict (spec B.3.3)", Profile::strict, kBothSources, kPageable, close_releases_case,
             Requirements{.cache_stats = true, .async_staging = true});
  add_matrix(
      registry, CaseName("blocking_async_stager", {"fresh"}),
      "BlockingAsyncStager without a cache returns new pageable buffers at every stage (CPU sources copied too) "
      "in a new container structure holding that stage's non-tensor leaves, and does not ask to be synchronised; "
      "closed, it refuses stage() with invalid_argument and a second close() returns",
      "strict (spec B.3.4, C.2.8)", Profile::strict, kBothSources, kPageable,
      [](CaseContext& ctx, Source s, PinShare c) { blocking_async_stager_case(ctx, s, c, false); }, kAsyncStaging);
  add_matrix(
      registry, CaseName("blocking_async_stager", {"cached"}),
      "BlockingAsyncStager with a cache copies every stage into one pinned cache (results alias it), returns a "
      "new container structure at every stage holding that stage's non-tensor leaves (a changed step), and "
      "rejects a state dict of another structure (one key more, one key fewer) with an invalid_argument error naming "
      "that key; synchronize_staging() after a refused stage is a no-op; close() releases the pinned cache once the "
      "results are dropped (upstream's is a no-op), then stage() raises invalid_argument and a second close() returns",
      "strict (spec B.3.4, C.2.8)", Profile::strict, kBothSources, kPinned,
      [](CaseContext& ctx, Source s, PinShare c) { blocking_async_stager_case(ctx, s, c, true); }, kAsyncStaging);
  add_matrix(registry, CaseName("blocking_async_stager", {"type_check"}),
             "BlockingAsyncStager without a cache refuses an object leaf naming its path with type_check=true and "
             "stages it with false; with a cache it refuses it whatever type_check says (as upstream); "
             "synchronize_staging() after each stage, refused or not, is a no-op",
             "strict (spec B.3.4, C.2.8)", Profile::strict, kBothSources, kPageable, blocking_async_type_check_case,
             kAsyncStaging);
}

}  // namespace stagekit::conformance
