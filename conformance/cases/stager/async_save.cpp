// Spec B.5, upstream A.1.10 and A.2.2: async_save with a caller's DefaultStager (reused across
// saves) and with the stager async_save makes itself (which must not accumulate memory).
#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "../../harness/fixtures.h"
#include "../../harness/replication_fixtures.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

namespace fs = std::filesystem;

constexpr Requirements kAsyncSave{.async_staging = true};

// Saves and waits for the upload; requires a non-empty description of what was written. With
// `train_on`, staging_completed is waited for first and `train_on` runs as soon as it is ready,
// before the upload is waited for (what training does once its state dict is staged).
bool save_and_wait(CaseContext& ctx, const Value& sd, const fs::path& dir, AsyncStagerUnderTest* stager,
                   const std::function<void()>& train_on = {}) {
  try {
    const AsyncSaveReturn r = ctx.impl().async_save(sd, dir.string(), stager);
    ctx.require(r.upload.valid() && r.staging_completed.valid(), dir.string(), "async_save",
                "returned no staging or upload future");
    if (train_on) {
      r.staging_completed.get();
      train_on();
    }
    const std::string metadata = r.upload.get();
    r.staging_completed.get();
    return ctx.check(!metadata.empty(), dir.string(), "metadata", "the upload returned empty metadata");
  } catch (const std::exception& e) {
    return ctx.check(false, dir.string(), "async_save", e.what());
  }
}

void check_saved(CaseContext& ctx, const fs::path& dir, const Value& expected, std::string_view which = {}) {
  const std::string by = which.empty() ? std::string() : fmt::format(" (saved with {})", which);
  try {
    const Value loaded = ctx.impl().load_checkpoint(dir.string());
    for (const TensorLeaf& leaf : tensor_leaves(expected)) {
      const Value got = loaded[leaf.path];
      ctx.check(got.is_tensor() && Tensor::equal(got.as_tensor().to(Device::cpu()), leaf.tensor.to(Device::cpu())),
                leaf.path, "checkpoint",
                fmt::format("{}{} does not hold the values saved", dir.filename().string(), by));
    }
    ctx.check(loaded["step"].kind() == expected["step"].kind() && loaded["step"].as_int() == expected["step"].as_int(),
              "step", "checkpoint", fmt::format("the saved step differs{}", by));
  } catch (const std::exception& e) {
    ctx.check(false, dir.string(), "load_checkpoint", e.what());
  }
}

// A.1.10: one caller-owned DefaultStager (`options`) serves two async_saves of a `shape` float32 tensor
// and a step. With `train_on` (strict), the caller's tensor and dict change as soon as staging_completed
// is ready, before the upload is waited for (spec B.5: the source is the caller's again once staged),
// and the checkpoint must still hold the values at the time of the call.
void reuses_stager(CaseContext& ctx, Source src, bool train_on, const StagingOptions& options,
                   std::vector<std::int64_t> shape) {
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  Tensor weight = Tensor::random(std::move(shape), DType::float32, 401, dev);
  const std::unique_ptr<AsyncStagerUnderTest> stager = make_default_stager_or_fail(ctx, options);
  const std::string which = options.use_async_staging ? "an asynchronous stager" : "a synchronous stager";
  for (int step = 0; step < 2; ++step) {
    weight.fill_(step + 0.5);
    const Value sd = Value::dict({{"weight", weight}, {"step", Value(std::int64_t{42 + step})}});
    // What the checkpoint must hold: the values at the time of the call (a copy: the source may change).
    const Value expected = Value::dict({{"weight", weight.clone()}, {"step", Value(std::int64_t{42 + step})}});
    const fs::path dir = tmp.path() / fmt::format("step_{}", step);
    std::function<void()> training;
    if (train_on) {
      training = [&] {
        weight.fill_(-7.0);
        sd.as_dict().set("step", Value(std::int64_t{-1}));
      };
    }
    if (save_and_wait(ctx, sd, dir, stager.get(), training)) check_saved(ctx, dir, expected, which);
  }
  stager->close();
}

// A.2.2: five async_saves of a 128 MiB tensor with async_save's own stager grow the resident set by
// less than 1.2 times the checkpoint (each internal stager is closed when its upload completes).
void no_memory_leak_case(CaseContext& ctx, Source src, PinShare) {
  constexpr std::int64_t kElements = std::int64_t{128} * 1024 * 1024 / 4;
  constexpr std::uint64_t kLimit = std::uint64_t{128} * 1024 * 1024 * 12 / 10;  // 153.6 MiB
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  const Value sd = Value::dict(
      {{"weights", Tensor::random({kElements}, DType::float32, 411, dev)}, {"step", Value(std::int64_t{0})}});
  const fs::path warmup = tmp.path() / "warmup";
  ctx.require(save_and_wait(ctx, sd, warmup, nullptr), "warmup", "async_save", "the warm-up save failed");
  check_saved(ctx, warmup, sd);
  fs::remove_all(warmup);
  const std::uint64_t baseline = probe::resident_bytes();
  for (int i = 0; i < 5; ++i) {
    const fs::path dir = tmp.path() / fmt::format("step_{}", i);
    ctx.require(save_and_wait(ctx, sd, dir, nullptr), dir.string(), "async_save", "a save failed");
    fs::remove_all(dir);
  }
  const std::uint64_t after = probe::resident_bytes();
  ctx.check(after < baseline + kLimit, "<process>", "resident memory",
            fmt::format("resident memory grew by {:.1f} MiB over 5 saves of a 128 MiB state dict (limit {:.1f} MiB)",
                        (static_cast<double>(after) - static_cast<double>(baseline)) / (1 << 20),
                        static_cast<double>(kLimit) / (1 << 20)));
}

// Spec B.5: dropping the response waits for the upload. The response is dropped unread right after
// async_save returns; the checkpoint must then be complete. 32 MiB keep an upload that goes on in the
// background running well past the load that follows at once.
void dropped_response_case(CaseContext& ctx, Source src, PinShare) {
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  auto d = std::make_shared<Dict>();
  for (int i = 0; i < 4; ++i) {
    d->set(fmt::format("layer{}", i),
           Tensor::random({std::int64_t{1} << 21}, DType::float32, 421 + static_cast<std::uint64_t>(i), dev));
  }
  d->set("step", Value(std::int64_t{17}));
  const Value sd(d);
  const fs::path dir = tmp.path() / "dropped";
  try {
    (void)ctx.impl().async_save(sd, dir.string(), nullptr);  // the response is dropped here
  } catch (const std::exception& e) {
    ctx.require(false, dir.string(), "async_save", e.what());
  }
  check_saved(ctx, dir, sd);
}

// Spec B.5, C.1.9: the checkpoint holds the staged dict as it is: an OrderedDict, a namedtuple, nested
// lists, strings and numbers come back with their kinds, types, key order and values, and views of one
// storage as views of one storage (strides and offsets kept), compared by the strict verifier (memory
// kinds aside: a loaded checkpoint is ordinary memory).
void keeps_containers_case(CaseContext& ctx, Source src, PinShare) {
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  Value ordered = Value::dict(
      {{"b", Tensor::random({3, 4}, DType::float32, 431, dev)}, {"a", Tensor::random({5}, DType::bfloat16, 432, dev)}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  const Tensor base = Tensor::random({8, 16}, DType::float32, 435, dev);
  const Value sd = Value::dict({
      {"ordered", ordered},
      {"base", base},
      {"views", Value::list({base.transpose(0, 1), base.select(0, 5)})},
      {"point", Value::named_tuple("stagekit_cases.Point",
                                   {{"weight", Tensor::random({6}, DType::float64, 433, dev)}, {"step", 3}})},
      {"nested", Value::list({Tensor::random({2, 2}, DType::int64, 434, dev), Value::list({1, "x", 2.5})})},
      {"name", "run-7"},
      {"step", Value(std::int64_t{42})},
  });
  const fs::path dir = tmp.path() / "containers";
  if (!save_and_wait(ctx, sd, dir, nullptr)) return;
  try {
    MemoryExpectation memory;
    memory.check_memory = false;
    ctx.add_failures(verify_staged(sd, ctx.impl().load_checkpoint(dir.string()), memory));
  } catch (const std::exception& e) {
    ctx.check(false, dir.string(), "load_checkpoint", e.what());
  }
}

// Where an async_save's error surfaced: from async_save() itself, staging_completed or the upload
// (the first of them that raised), with the metadata the upload returned when it did not.
struct SaveOutcome {
  std::string raised_by;  // empty: nothing raised
  std::optional<Error> error;
  std::string metadata;
};

SaveOutcome save_expecting_error(CaseContext& ctx, const Value& sd, const fs::path& dir, AsyncStagerUnderTest* stager) {
  SaveOutcome out;
  auto note = [&out](const char* where, const Error& e) {
    if (out.raised_by.empty()) {
      out.raised_by = where;
      out.error = e;
    }
  };
  AsyncSaveReturn r;
  try {
    r = ctx.impl().async_save(sd, dir.string(), stager);
  } catch (const Error& e) {
    note("async_save()", e);
    return out;
  }
  ctx.require(r.upload.valid() && r.staging_completed.valid(), dir.string(), "async_save",
              "returned no staging or upload future");
  try {
    r.staging_completed.get();
  } catch (const Error& e) {
    note("staging_completed", e);
  }
  try {
    out.metadata = r.upload.get();
  } catch (const Error& e) {
    note("the upload", e);
  }
  return out;
}

// Spec B.5 and the contract (the upload rethrows): a staging error and a write error surface as a
// stagekit::Error from async_save(), staging_completed or the upload, never as metadata. A lock cannot
// be staged (with async_save's own stager and with a caller's asynchronous one: the error names
// layer0.lock); a directory below a regular file cannot be written (an I/O error).
void save_errors_surface_case(CaseContext& ctx, Source src, PinShare) {
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  const Value bad = Value::dict({{"weight", Tensor::random({8, 8}, DType::float32, 441, dev)},
                                 {"layer0", Value::dict({{"lock", Value::opaque("threading.Lock")}})}});
  const std::unique_ptr<AsyncStagerUnderTest> async_stager =
      make_default_stager_or_fail(ctx, StagingOptions{false, false, true, false});
  struct Run {
    const char* what;
    AsyncStagerUnderTest* stager;
  };
  for (const Run& run : {Run{"its own stager", nullptr}, Run{"an asynchronous caller's stager", async_stager.get()}}) {
    const fs::path dir = tmp.path() / (run.stager == nullptr ? "own" : "caller");
    const SaveOutcome o = save_expecting_error(ctx, bad, dir, run.stager);
    if (!o.error) {
      ctx.check(false, "layer0.lock", "error surfaces",
                fmt::format("a state dict holding a lock was saved with {} without an error (the upload returned "
                            "'{}')",
                            run.what, o.metadata));
      continue;
    }
    ctx.check(std::string(o.error->what()).find("layer0.lock") != std::string::npos, "layer0.lock",
              "error names the path",
              fmt::format("with {}, the error (from {}) does not name layer0.lock: {}", run.what, o.raised_by,
                          o.error->what()));
  }
  async_stager->close();
  // A regular file where a directory of the checkpoint's path must go.
  const fs::path blocker = tmp.path() / "a_file";
  {
    std::FILE* f = std::fopen(blocker.c_str(), "w");
    ctx.require(f != nullptr, blocker.string(), "setup", "cannot create a file in the scratch directory");
    std::fclose(f);
  }
  const Value good =
      Value::dict({{"weight", Tensor::random({8, 8}, DType::float32, 442, dev)}, {"step", Value(std::int64_t{3})}});
  const SaveOutcome o = save_expecting_error(ctx, good, blocker / "checkpoint", nullptr);
  if (!o.error) {
    ctx.check(false, (blocker / "checkpoint").string(), "error surfaces",
              fmt::format("a checkpoint below a regular file was saved without an error (the upload returned '{}')",
                          o.metadata));
  } else {
    ctx.check(o.error->code() == ErrorCode::io, (blocker / "checkpoint").string(), "error kind",
              fmt::format("a checkpoint below a regular file raised {} (from {}), not an I/O error: {}",
                          error_code_name(o.error->code()), o.raised_by, o.error->what()));
  }
}

// The contract: a missing or damaged checkpoint makes load_checkpoint raise a stagekit::Error, never
// return a tree: a directory that does not exist, an empty one, and a good checkpoint with every file
// in it emptied, then cut to half its size.
void damaged_checkpoint_case(CaseContext& ctx, Source src, PinShare) {
  const Device dev = source_device(src);
  const ScratchDir tmp("stagekit-async-save");
  auto expect_refused = [&ctx](const fs::path& dir, std::string_view what) {
    try {
      const Value loaded = ctx.impl().load_checkpoint(dir.string());
      ctx.check(
          false, dir.string(), "refused",
          fmt::format("load_checkpoint of {} returned a {} instead of raising", what, value_kind_name(loaded.kind())));
    } catch (const Error&) {
    } catch (const std::exception& e) {
      ctx.check(false, dir.string(), "error kind",
                fmt::format("load_checkpoint of {} raised something other than a stagekit::Error: {}", what, e.what()));
    }
  };
  expect_refused(tmp.path() / "never_written", "a directory that does not exist");
  fs::create_directories(tmp.path() / "empty");
  expect_refused(tmp.path() / "empty", "an empty directory");
  const Value sd =
      Value::dict({{"weight", Tensor::random({256, 256}, DType::float32, 451, dev)}, {"step", Value(std::int64_t{9})}});
  for (const bool emptied : {true, false}) {
    const fs::path dir = tmp.path() / (emptied ? "emptied" : "halved");
    if (!save_and_wait(ctx, sd, dir, nullptr)) return;
    int files = 0;
    for (const fs::directory_entry& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      ++files;
      fs::resize_file(e.path(), emptied ? 0 : e.file_size() / 2);
    }
    ctx.require(files > 0, dir.string(), "checkpoint", "async_save wrote no file in the checkpoint's directory");
    expect_refused(dir,
                   emptied ? "a checkpoint whose files were emptied" : "a checkpoint whose files were cut in half");
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(async_save) {
  static constexpr PinShare kPageable[] = {PinShare{false, false}};
  add_matrix(
      registry, "async_save_reuses_stager",
      "One DefaultStager with every option off serves two async_saves: each upload returns metadata and the "
      "checkpoint holds the values saved",
      "TestStateDictStager.test_async_save_can_reuse_default_stager (fork 00d947a6)", Profile::upstream, kBothSources,
      kPageable,
      [](CaseContext& ctx, Source s, PinShare) {
        reuses_stager(ctx, s, false, StagingOptions{false, false, false, false}, {4, 4});
      },
      kAsyncSave);
  add_matrix(
      registry, "async_save_staged_before_training_goes_on",
      "As async_save_reuses_stager, but the caller changes its tensor and dict as soon as staging_completed "
      "is ready, before the upload is waited for: each checkpoint still holds the values at the time of the "
      "call; then the same with an asynchronous DefaultStager (a 16 MiB tensor, staged on its worker)",
      "strict (spec B.5)", Profile::strict, kBothSources, kPageable,
      [](CaseContext& ctx, Source s, PinShare) {
        reuses_stager(ctx, s, true, StagingOptions{false, false, false, false}, {4, 4});
        reuses_stager(ctx, s, true, StagingOptions{false, false, true, false}, {2048, 2048});
      },
      kAsyncSave);
  add_matrix(registry, "async_save_dropped_response_waits",
             "Dropping async_save's response (32 MiB, its own stager) without reading it waits for the upload: "
             "the checkpoint loads complete right after",
             "strict (spec B.5)", Profile::strict, kBothSources, kPageable, dropped_response_case, kAsyncSave);
  add_matrix(registry, "async_save_keeps_containers",
             "The checkpoint async_save writes loads back exactly (strict verifier): an OrderedDict, a namedtuple, "
             "nested lists, a string and numbers keep their kinds, types, key order and values, and two views of a "
             "tensor stay views of its storage, with their strides and offsets",
             "strict (spec B.5, C.1.9)", Profile::strict, kBothSources, kPageable, keeps_containers_case, kAsyncSave);
  add_matrix(registry, "async_save_errors_surface",
             "A staging error (a lock, with async_save's own stager and with a caller's asynchronous one) and a "
             "write error (the directory below a regular file) surface as a stagekit::Error from async_save(), "
             "staging_completed or the upload, never as metadata: the first names layer0.lock, the second is an "
             "I/O error",
             "strict (spec B.5)", Profile::strict, kBothSources, kPageable, save_errors_surface_case, kAsyncSave);
  add_matrix(registry, "async_save_damaged_checkpoint_refused",
             "load_checkpoint raises a stagekit::Error, never returns a tree, for a directory that does not exist, an "
             "empty one, and a checkpoint with every file emptied or cut in half",
             "strict (spec B.5)", Profile::strict, kBothSources, kPageable, damaged_checkpoint_case, kAsyncSave);
  add_matrix(registry, "async_save_no_memory_leak",
             "Five async_saves of a 128 MiB state dict with async_save's own stager grow the resident set by less "
             "than 153.6 MiB (1.2 checkpoints)",
             "TestDTensorStateDictStager.test_async_save_no_memory_leak", Profile::strict, kBothSources, kPageable,
             no_memory_leak_case, kAsyncSave);
}

}  // namespace stagekit::conformance
