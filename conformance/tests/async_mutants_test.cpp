// The asynchronous staging cases must bite: the reference's DefaultStager, BlockingAsyncStager and
// async_save, each with one flaw (the upstream ones of spec C.2 among them), are caught by the cases
// for that property and pass an unrelated one.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <chrono>
#include <exception>
#include <future>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "case_outcome.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/case.h"
#include "stagekit/core/cuda.h"

namespace stagekit::conformance {
namespace {

enum class AsyncFlaw {
  drops_cache_after_stage,  // upstream post-#170431: a new stager (no buffers kept) for every stage
  returns_dict_when_async,  // stage() waits and returns the dict (errors raised from stage())
  close_returns_at_once,    // close() neither waits for stages in flight nor refuses later stages
  cache_never_kept,         // BlockingAsyncStager(cache=true) builds new buffers at every stage
  leaks_own_stager,         // async_save never closes the stager it made
  blocking_without_asking,  // a non-blocking copy without an accelerator quietly becomes a blocking one
  no_metadata,              // async_save's upload yields an empty description
  synchronize_at_once,      // synchronize_staging() returns at once (re-raising only an error already known)
  close_keeps_buffers,      // close() waits and refuses later stages, but the results' buffers stay until destruction
  ignores_callers_stream,   // the copies wait for an idle stream, not the caller's current one (upstream: spec C.2.3)
  blocking_type_check_off,  // BlockingAsyncStager never type-checks without its cache, whatever type_check says
  sticky_error,             // synchronize_staging() re-raises the first failed stage's error forever, not the last's
  returns_cache_itself,     // BlockingAsyncStager(cache=true) returns the first stage's result at every stage
                            // (tensors refreshed through the cache, the containers and non-tensor leaves stale)
  stages_late,              // async_save's staging_completed is ready at once; staging runs in the upload
  mismatch_internal,        // BlockingAsyncStager(cache=true) refuses another structure with an internal error
                            // naming no path
  stage_after_close_internal,   // stage() after close() raises an internal error, not invalid_argument
  close_twice_raises,           // a second close() raises instead of returning
  drop_returns_at_once,         // dropping async_save's response returns while the upload still runs
  plain_checkpoint,             // load_checkpoint returns OrderedDicts as dicts and namedtuples as tuples
  close_forgets_error,          // close() drops a failed stage's error: synchronize_staging() after it returns
  sync_error_once,              // synchronize_staging() re-raises a failed stage's error once, then returns
  sync_mode_stale_error,        // a synchronous stage()'s error is kept and re-raised by synchronize_staging()
  blocking_sync_raises,         // BlockingAsyncStager's synchronize_staging() re-raises its last refused stage
  blocking_fewer_keys,          // BlockingAsyncStager(cache=true) stages a dict with keys missing (those present)
  blocking_close_noop,          // BlockingAsyncStager's close() does nothing (as upstream's): cache kept, stages go on
  pageable_close_keeps_cache,   // a DefaultStager without pinned or shared memory refuses stages after close() but
                                // keeps the stager inside, and its cache, until destruction
  sync_keeps_last_result,       // a synchronous DefaultStager keeps its last result after close()
  async_staged_reported_early,  // async_save with a caller's asynchronous stager: staging_completed ready at once,
                                // the stage submitted 200 ms later
  load_returns_empty,           // load_checkpoint of a missing or damaged checkpoint returns an empty dict
  upload_swallows_errors,       // async_save's errors become the upload's metadata ("failed: ...")
  checkpoint_unshares_views,    // load_checkpoint gives every tensor a contiguous storage of its own
};

// What kind of stager a FlawedAsyncStager wraps.
struct StagerKind {
  bool cached = false;    // a BlockingAsyncStager with its cache
  bool blocking = false;  // a BlockingAsyncStager
  bool pageable = false;  // a DefaultStager with neither pinned nor shared memory
  bool async = false;     // a DefaultStager with use_async_staging
};

class FlawedAsyncStager final : public AsyncStagerUnderTest {
 public:
  FlawedAsyncStager(AsyncFlaw flaw, std::function<std::unique_ptr<AsyncStagerUnderTest>()> remake, StagerKind kind)
      : flaw_(flaw),
        cached_(kind.cached),
        blocking_(kind.blocking),
        kind_(kind),
        remake_(std::move(remake)),
        inner_(remake_()) {}
  StageReturn stage(const Value& sd) override {
    sync_raised_ = false;
    if ((flaw_ == AsyncFlaw::sync_mode_stale_error && !blocking_) ||
        (flaw_ == AsyncFlaw::blocking_sync_raises && blocking_)) {
      try {
        StageReturn r = inner_->stage(sd);
        kept_error_ = nullptr;
        return r;
      } catch (const Error&) {
        kept_error_ = std::current_exception();
        throw;
      }
    }
    if (flaw_ == AsyncFlaw::blocking_fewer_keys && cached_ && sd.kind() == Value::Kind::dict) {
      if (!full_source_) {
        full_source_ = sd;
        return inner_->stage(sd);
      }
      // The keys present over the first stage's full structure; only those are returned.
      auto merged = std::make_shared<Dict>(full_source_->as_dict());
      for (const auto& [k, item] : sd.as_dict().entries()) merged->set(k, item);
      StageReturn r = inner_->stage(Value(merged));
      if (r.state_dict) {
        auto present = std::make_shared<Dict>();
        for (const auto& [k, item] : r.state_dict->as_dict().entries()) {
          if (sd.as_dict().contains(k)) present->set(k, item);
        }
        r.state_dict = Value(present);
      }
      return r;
    }
    if (flaw_ == AsyncFlaw::pageable_close_keeps_cache && kind_.pageable && closed_) {
      throw InvalidArgument("DefaultStager: stage() after close()");
    }
    if (flaw_ == AsyncFlaw::stage_after_close_internal && closed_) {
      throw Error(ErrorCode::internal, "staging worker has stopped");
    }
    if (flaw_ == AsyncFlaw::mismatch_internal && cached_ && staged_once_) {
      try {
        return inner_->stage(sd);
      } catch (const InvalidArgument&) {
        throw Error(ErrorCode::internal, "staged state dict does not match the cache");
      }
    }
    staged_once_ = true;
    if (flaw_ == AsyncFlaw::drops_cache_after_stage || flaw_ == AsyncFlaw::cache_never_kept) {
      retired_.push_back(std::move(inner_));
      inner_ = remake_();
    }
    StageReturn r;
    if (flaw_ == AsyncFlaw::ignores_callers_stream && cuda::available()) {
      const cuda::Stream idle(0);
      const cuda::StreamGuard guard(idle.handle());
      r = inner_->stage(sd);
    } else {
      r = inner_->stage(sd);
    }
    if (flaw_ == AsyncFlaw::close_keeps_buffers) {  // what the stager returned stays referenced here
      if (r.is_future()) kept_futures_.push_back(r.future);
      if (r.state_dict) kept_.push_back(*r.state_dict);
    }
    if (flaw_ == AsyncFlaw::sticky_error && r.is_future()) every_future_.push_back(r.future);
    if (flaw_ == AsyncFlaw::returns_cache_itself && cached_ && r.state_dict) {
      if (!first_result_) first_result_ = *r.state_dict;
      r.state_dict = *first_result_;
    }
    if (flaw_ == AsyncFlaw::returns_dict_when_async && r.is_future()) {
      StageReturn now;
      now.state_dict = r.future.get();
      return now;
    }
    if (flaw_ == AsyncFlaw::sync_keeps_last_result && !blocking_ && r.state_dict) kept_last_ = *r.state_dict;
    if (r.is_future()) last_ = r.future;
    return r;
  }
  void synchronize_staging() override {
    if (kept_error_) std::rethrow_exception(kept_error_);
    if (flaw_ == AsyncFlaw::close_forgets_error && closed_) return;
    if (flaw_ == AsyncFlaw::sync_error_once) {
      if (sync_raised_) return;
      try {
        inner_->synchronize_staging();
      } catch (const Error&) {
        sync_raised_ = true;
        throw;
      }
      return;
    }
    if (flaw_ == AsyncFlaw::synchronize_at_once) {
      if (last_.valid() && last_.wait_for(std::chrono::seconds(0)) == std::future_status::ready) (void)last_.get();
      return;
    }
    inner_->synchronize_staging();
    if (flaw_ == AsyncFlaw::sticky_error) {
      for (const std::shared_future<Value>& f : every_future_) (void)f.get();  // the first failed one raises
    }
  }
  bool should_synchronize_after_execute() const override { return inner_->should_synchronize_after_execute(); }
  void close() override {
    if (flaw_ == AsyncFlaw::close_twice_raises && closed_) throw InvalidArgument("stager already closed");
    closed_ = true;
    if ((flaw_ == AsyncFlaw::blocking_close_noop && blocking_) ||
        (flaw_ == AsyncFlaw::pageable_close_keeps_cache && kind_.pageable)) {
      return;
    }
    last_ = {};  // the last result is the caller's alone once the stager is closed
    if (flaw_ == AsyncFlaw::close_returns_at_once) {
      closing_.push_back(std::move(inner_));  // closed later, by its destructor
      inner_ = remake_();
      return;
    }
    inner_->close();
  }
  std::optional<CacheStats> cache_stats() const override { return inner_->cache_stats(); }
  AsyncStagerUnderTest& inner() { return *inner_; }
  [[nodiscard]] const StagerKind& kind() const noexcept { return kind_; }

 private:
  AsyncFlaw flaw_;
  bool cached_;    // a BlockingAsyncStager with its cache
  bool blocking_;  // a BlockingAsyncStager
  StagerKind kind_;
  std::optional<Value> kept_last_;    // sync_keeps_last_result
  bool sync_raised_ = false;          // sync_error_once: raised since the last stage
  std::exception_ptr kept_error_;     // sync_mode_stale_error, blocking_sync_raises
  std::optional<Value> full_source_;  // blocking_fewer_keys: the first stage's source
  bool staged_once_ = false;
  bool closed_ = false;
  std::function<std::unique_ptr<AsyncStagerUnderTest>()> remake_;
  std::unique_ptr<AsyncStagerUnderTest> inner_;
  std::vector<std::unique_ptr<AsyncStagerUnderTest>> retired_;
  std::vector<std::unique_ptr<AsyncStagerUnderTest>> closing_;
  std::shared_future<Value> last_;                       // the last stage's future
  std::vector<std::shared_future<Value>> kept_futures_;  // close_keeps_buffers
  std::vector<Value> kept_;
  std::vector<std::shared_future<Value>> every_future_;  // sticky_error
  std::optional<Value> first_result_;                    // returns_cache_itself
};

// `v` with every dict a plain dict and every tuple a plain tuple (tensors and leaves as they are).
Value plain_containers(const Value& v) {
  if (v.kind() == Value::Kind::dict) {
    auto d = std::make_shared<Dict>();
    for (const auto& [k, item] : v.as_dict().entries()) d->set(k, plain_containers(item));
    return Value(d);
  }
  if (v.kind() == Value::Kind::list) {
    std::vector<Value> items;
    for (const Value& item : v.as_list().items) items.push_back(plain_containers(item));
    return Value::list(std::move(items));
  }
  if (v.kind() == Value::Kind::tuple) {
    std::vector<Value> items;
    for (const Value& item : v.as_tuple().items()) items.push_back(plain_containers(item));
    return Value::tuple(std::move(items));
  }
  return v;
}

// `v` with every tensor (under dicts and lists) a copy on a storage of its own.
Value own_storages(const Value& v) {
  if (v.is_tensor()) return Value(v.as_tensor().clone());
  if (v.kind() == Value::Kind::dict) {
    auto d = std::make_shared<Dict>();
    d->set_type_name(v.as_dict().type_name());
    for (const auto& [k, item] : v.as_dict().entries()) d->set(k, own_storages(item));
    return Value(d);
  }
  if (v.kind() == Value::Kind::list) {
    std::vector<Value> items;
    for (const Value& item : v.as_list().items) items.push_back(own_storages(item));
    return Value::list(std::move(items));
  }
  return v;
}

class AsyncMutant final : public Implementation {
 public:
  explicit AsyncMutant(AsyncFlaw flaw) : flaw_(flaw), reference_(make_reference_implementation()) {}
  std::string name() const override { return "async-mutant"; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override { return reference_->capabilities(); }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& c) override { return reference_->make_stager(c); }
  std::unique_ptr<AsyncStagerUnderTest> make_default_stager(const StagingOptions& options) override {
    StagingOptions o = options;
    if (flaw_ == AsyncFlaw::blocking_without_asking) o.use_non_blocking_copy = false;
    const StagerKind kind{.pageable = !o.use_pinned_memory && !o.use_shared_memory, .async = o.use_async_staging};
    return std::make_unique<FlawedAsyncStager>(
        flaw_, [this, o] { return reference_->make_default_stager(o); }, kind);
  }
  std::unique_ptr<AsyncStagerUnderTest> make_blocking_async_stager(const BlockingAsyncStagerConfig& config) override {
    BlockingAsyncStagerConfig c = config;
    if (flaw_ == AsyncFlaw::blocking_type_check_off) c.type_check = false;
    return std::make_unique<FlawedAsyncStager>(
        flaw_, [this, c] { return reference_->make_blocking_async_stager(c); },
        StagerKind{.cached = c.cache_staged_state_dict, .blocking = true});
  }
  AsyncSaveReturn async_save(const Value& sd, const std::string& dir, AsyncStagerUnderTest* stager) override {
    if (stager == nullptr && flaw_ == AsyncFlaw::leaks_own_stager) {
      leaked_.push_back(reference_->make_default_stager(StagingOptions{false, false, false, false}));
      return reference_->async_save(sd, dir, leaked_.back().get());
    }
    auto* flawed = dynamic_cast<FlawedAsyncStager*>(stager);
    AsyncStagerUnderTest* inner = flawed != nullptr ? &flawed->inner() : stager;
    if (flaw_ == AsyncFlaw::stages_late) {
      // Reported staged at once; the whole save, staging included, runs when the upload is waited for.
      std::promise<void> staged;
      staged.set_value();
      AsyncSaveReturn late;
      late.staging_completed = staged.get_future().share();
      late.upload = std::async(std::launch::deferred, [this, sd, dir, inner] {
                      AsyncSaveReturn r = reference_->async_save(sd, dir, inner);
                      r.staging_completed.get();
                      return r.upload.get();
                    }).share();
      return late;
    }
    if (flaw_ == AsyncFlaw::async_staged_reported_early && flawed != nullptr && flawed->kind().async) {
      // Reported staged at once; the stage is submitted 200 ms later, on a thread of the upload's.
      std::promise<void> staged;
      staged.set_value();
      AsyncSaveReturn early;
      early.staging_completed = staged.get_future().share();
      early.upload = std::async(std::launch::async, [this, sd, dir, inner] {
                       std::this_thread::sleep_for(std::chrono::milliseconds(200));
                       AsyncSaveReturn r = reference_->async_save(sd, dir, inner);
                       r.staging_completed.get();
                       return r.upload.get();
                     }).share();
      return early;
    }
    if (flaw_ == AsyncFlaw::upload_swallows_errors) {
      // Every error, from async_save or its futures, becomes the upload's metadata.
      AsyncSaveReturn swallowed;
      std::promise<void> staged;
      staged.set_value();
      swallowed.staging_completed = staged.get_future().share();
      std::optional<AsyncSaveReturn> r;
      std::string failure;
      try {
        r = reference_->async_save(sd, dir, inner);
      } catch (const std::exception& e) {
        failure = fmt::format("failed: {}", e.what());
      }
      swallowed.upload = std::async(std::launch::async, [r, failure]() -> std::string {
                           if (!r) return failure;
                           try {
                             r->staging_completed.get();
                             return r->upload.get();
                           } catch (const std::exception& e) {
                             return fmt::format("failed: {}", e.what());
                           }
                         }).share();
      return swallowed;
    }
    AsyncSaveReturn r = reference_->async_save(sd, dir, inner);
    if (flaw_ == AsyncFlaw::drop_returns_at_once) {
      // The reference's response is kept here (dropped with the mutant); the caller's reads through it.
      saves_.push_back(r);
      AsyncSaveReturn unbound;
      unbound.staging_completed = r.staging_completed;
      unbound.upload = std::async(std::launch::deferred, [upload = r.upload] { return upload.get(); }).share();
      return unbound;
    }
    if (flaw_ == AsyncFlaw::no_metadata) {
      r.upload = std::async(std::launch::async, [upload = r.upload] {
                   (void)upload.get();
                   return std::string();
                 }).share();
    }
    return r;
  }
  Value load_checkpoint(const std::string& dir) override {
    if (flaw_ == AsyncFlaw::load_returns_empty) {
      try {
        return reference_->load_checkpoint(dir);
      } catch (const Error&) {
        return Value::dict({});
      }
    }
    const Value loaded = reference_->load_checkpoint(dir);
    if (flaw_ == AsyncFlaw::checkpoint_unshares_views) return own_storages(loaded);
    return flaw_ == AsyncFlaw::plain_checkpoint ? plain_containers(loaded) : loaded;
  }

 private:
  AsyncFlaw flaw_;
  std::unique_ptr<Implementation> reference_;
  std::vector<std::unique_ptr<AsyncStagerUnderTest>> leaked_;
  std::vector<AsyncSaveReturn> saves_;  // drop_returns_at_once: waited for only when the mutant goes
};

void expect_caught(AsyncFlaw flaw, const std::vector<std::string>& must_fail, const std::string& control) {
  AsyncMutant impl(flaw);
  for (const std::string& id : must_fail) {
    EXPECT_EQ(case_outcome(impl, id), Outcome::fail) << "flaw " << static_cast<int>(flaw) << " not caught by " << id;
  }
  EXPECT_EQ(case_outcome(impl, control), Outcome::pass)
      << "flaw " << static_cast<int>(flaw) << " should pass " << control;
}

TEST(AsyncMutants, CacheDroppedAfterEveryStage) {
  expect_caught(AsyncFlaw::drops_cache_after_stage,
                {"stager.default_stager.async.cpu.pin0_share0", "stager.default_stager.sync.cpu.pin1_share1"},
                "stager.default_stager_errors_surface.sync.cpu.pin0_share0");
}

TEST(AsyncMutants, AsyncStageReturnsTheDict) {
  expect_caught(
      AsyncFlaw::returns_dict_when_async,
      {"stager.default_stager.async.cpu.pin0_share0", "stager.default_stager_errors_surface.async.cpu.pin0_share0"},
      "stager.default_stager.sync.cpu.pin0_share0");
}

TEST(AsyncMutants, CloseReturnsAtOnce) {
  expect_caught(AsyncFlaw::close_returns_at_once, {"stager.default_stager_close_waits.cpu.pin0_share0"},
                "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, BlockingCacheNeverKept) {
  expect_caught(AsyncFlaw::cache_never_kept, {"stager.blocking_async_stager.cached.cpu.pin1_share0"},
                "stager.blocking_async_stager.type_check.cpu.pin0_share0");
}

TEST(AsyncMutants, AsyncSaveLeaksItsOwnStager) {
  expect_caught(AsyncFlaw::leaks_own_stager, {"stager.async_save_no_memory_leak.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, NonBlockingCopyQuietlyBlocking) {
  expect_caught(AsyncFlaw::blocking_without_asking, {"stager.default_stager_needs_accelerator.cpu.pin0_share0"},
                "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, AsyncSaveWithoutMetadata) {
  expect_caught(AsyncFlaw::no_metadata, {"stager.async_save_reuses_stager.cpu.pin0_share0"},
                "stager.default_stager.sync.cpu.pin0_share0");
}

TEST(AsyncMutants, SynchronizeStagingReturnsAtOnce) {
  expect_caught(AsyncFlaw::synchronize_at_once, {"stager.default_stager_close_waits.cpu.pin0_share0"},
                "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, CloseKeepsTheBuffers) {
  expect_caught(
      AsyncFlaw::close_keeps_buffers,
      {"stager.default_stager_close_releases.cpu.pin1_share0", "stager.default_stager_close_releases.cpu.pin0_share1",
       "stager.default_stager_close_releases.cpu.pin1_share1"},
      "stager.default_stager_close_waits.cpu.pin1_share1");
}

TEST(AsyncMutants, BlockingAsyncStagerNeverTypeChecking) {
  expect_caught(AsyncFlaw::blocking_type_check_off, {"stager.blocking_async_stager.type_check.cpu.pin0_share0"},
                "stager.blocking_async_stager.fresh.cpu.pin0_share0");
}

TEST(AsyncMutants, SynchronizeStagingRaisesTheFirstErrorForever) {
  expect_caught(AsyncFlaw::sticky_error, {"stager.default_stager_errors_surface.async.cpu.pin0_share0"},
                "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, CachedBlockingStagerReturnsItsFirstResult) {
  expect_caught(AsyncFlaw::returns_cache_itself, {"stager.blocking_async_stager.cached.cpu.pin1_share0"},
                "stager.blocking_async_stager.fresh.cpu.pin0_share0");
}

TEST(AsyncMutants, AsyncSaveStagesInsideTheUpload) {
  expect_caught(AsyncFlaw::stages_late, {"stager.async_save_staged_before_training_goes_on.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, CacheMismatchRaisesAnInternalError) {
  expect_caught(AsyncFlaw::mismatch_internal, {"stager.blocking_async_stager.cached.cpu.pin1_share0"},
                "stager.blocking_async_stager.fresh.cpu.pin0_share0");
}

TEST(AsyncMutants, StageAfterCloseRaisesAnInternalError) {
  expect_caught(
      AsyncFlaw::stage_after_close_internal,
      {"stager.default_stager_close_waits.cpu.pin0_share0", "stager.default_stager_close_waits.cpu.pin1_share1"},
      "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, SecondCloseRaises) {
  expect_caught(
      AsyncFlaw::close_twice_raises,
      {"stager.default_stager_close_waits.cpu.pin0_share0", "stager.default_stager_close_waits.cpu.pin1_share1"},
      "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, DroppedAsyncSaveResponseDoesNotWait) {
  expect_caught(AsyncFlaw::drop_returns_at_once, {"stager.async_save_dropped_response_waits.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, CheckpointLosesContainerTypes) {
  expect_caught(AsyncFlaw::plain_checkpoint, {"stager.async_save_keeps_containers.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, CloseForgetsTheFailedStagesError) {
  expect_caught(AsyncFlaw::close_forgets_error, {"stager.default_stager_errors_surface.async.cpu.pin0_share0"},
                "stager.default_stager_close_waits.cpu.pin0_share0");
}

TEST(AsyncMutants, SynchronizeStagingRaisesTheErrorOnce) {
  expect_caught(AsyncFlaw::sync_error_once, {"stager.default_stager_errors_surface.async.cpu.pin0_share0"},
                "stager.default_stager.async.cpu.pin0_share0");
}

TEST(AsyncMutants, SynchronousStageErrorKeptForSynchronizeStaging) {
  expect_caught(AsyncFlaw::sync_mode_stale_error, {"stager.default_stager_errors_surface.sync.cpu.pin0_share0"},
                "stager.default_stager_errors_surface.async.cpu.pin0_share0");
}

TEST(AsyncMutants, BlockingSynchronizeStagingRaisesTheRefusal) {
  expect_caught(AsyncFlaw::blocking_sync_raises,
                {"stager.blocking_async_stager.type_check.cpu.pin0_share0",
                 "stager.blocking_async_stager.cached.cpu.pin1_share0"},
                "stager.blocking_async_stager.fresh.cpu.pin0_share0");
}

TEST(AsyncMutants, CachedBlockingStagerAcceptsFewerKeys) {
  expect_caught(AsyncFlaw::blocking_fewer_keys, {"stager.blocking_async_stager.cached.cpu.pin1_share0"},
                "stager.blocking_async_stager.fresh.cpu.pin0_share0");
}

TEST(AsyncMutants, BlockingCloseDoesNothing) {
  expect_caught(
      AsyncFlaw::blocking_close_noop,
      {"stager.blocking_async_stager.cached.cpu.pin1_share0", "stager.blocking_async_stager.fresh.cpu.pin0_share0"},
      "stager.default_stager_close_waits.cpu.pin0_share0");
}

TEST(AsyncMutants, PageableCloseKeepsTheCache) {
  expect_caught(AsyncFlaw::pageable_close_keeps_cache, {"stager.default_stager_close_releases.cpu.pin0_share0"},
                "stager.default_stager_close_releases.cpu.pin1_share1");
}

TEST(AsyncMutants, SynchronousStagerKeepsItsLastResult) {
  expect_caught(
      AsyncFlaw::sync_keeps_last_result,
      {"stager.default_stager_close_releases.cpu.pin1_share0", "stager.default_stager_close_releases.cpu.pin0_share1"},
      "stager.default_stager_close_waits.cpu.pin1_share1");
}

TEST(AsyncMutants, AsyncSaveReportsACallersAsyncStageEarly) {
  expect_caught(AsyncFlaw::async_staged_reported_early,
                {"stager.async_save_staged_before_training_goes_on.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, DamagedCheckpointLoadsEmpty) {
  expect_caught(AsyncFlaw::load_returns_empty, {"stager.async_save_damaged_checkpoint_refused.cpu.pin0_share0"},
                "stager.async_save_keeps_containers.cpu.pin0_share0");
}

TEST(AsyncMutants, AsyncSaveErrorsBecomeMetadata) {
  expect_caught(AsyncFlaw::upload_swallows_errors, {"stager.async_save_errors_surface.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, CheckpointLosesStorageSharing) {
  expect_caught(AsyncFlaw::checkpoint_unshares_views, {"stager.async_save_keeps_containers.cpu.pin0_share0"},
                "stager.async_save_reuses_stager.cpu.pin0_share0");
}

TEST(AsyncMutants, CopiesIgnoreTheCallersStream) {
  if (!cuda::available()) GTEST_SKIP() << cuda::availability().reason;
  expect_caught(AsyncFlaw::ignores_callers_stream,
                {"stager.waits_for_producer_stream.default_stager.cuda.pin0_share0",
                 "stager.waits_for_producer_stream.default_stager.cuda.pin1_share1"},
                "stager.default_stager.async.cuda.pin1_share1");
}

}  // namespace
}  // namespace stagekit::conformance
