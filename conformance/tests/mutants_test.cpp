// The suite must bite: implementations that each break one documented property are run through the
// cases that check it, which must fail, while a case that does not depend on that property passes.
#include <gtest/gtest.h>

#include <unistd.h>

#include <sys/syscall.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <future>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <variant>

#include <fmt/format.h>

#include "case_outcome.h"
#include "container_mutations.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/case.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/testing/memory_probe.h"
#include "verify/verify.h"

namespace stagekit::conformance {
namespace {

using Transform = std::function<Value(const Value& source, const Value& staged)>;

// Rebuilds `v` bottom-up, letting `leaf` replace tensors and `object` replace objects; every other
// container keeps its type (namedtuples, dict subclasses, frozensets).
Value rebuild(const Value& v, const std::function<Value(const Tensor&)>& leaf,
              const std::function<Value(const Object&, std::vector<std::pair<std::string, Value>>)>& object) {
  switch (v.kind()) {
    case Value::Kind::tensor: return leaf(v.as_tensor());
    case Value::Kind::list: {
      std::vector<Value> items;
      for (const Value& i : v.as_list().items) items.push_back(rebuild(i, leaf, object));
      return Value::list(std::move(items));
    }
    case Value::Kind::tuple: {
      const Tuple& t = v.as_tuple();
      std::vector<Value> items;
      for (const Value& i : t.items()) items.push_back(rebuild(i, leaf, object));
      if (!t.is_named()) return Value::tuple(std::move(items));
      return Value(std::make_shared<Tuple>(std::move(items), t.type_name(), t.field_names()));
    }
    case Value::Kind::dict: {
      auto d = std::make_shared<Dict>();
      d->set_type_name(v.as_dict().type_name());
      for (const auto& [k, i] : v.as_dict().entries()) d->set(k, rebuild(i, leaf, object));
      return Value(d);
    }
    case Value::Kind::set: return Value(std::make_shared<Set>(v.as_set().items(), v.as_set().frozen()));
    case Value::Kind::object: {
      std::vector<std::pair<std::string, Value>> fields;
      for (const auto& [n, i] : v.as_object().fields()) fields.emplace_back(n, rebuild(i, leaf, object));
      return object(v.as_object(), std::move(fields));
    }
    default: return v;
  }
}

Value keep_object(const Object& o, std::vector<std::pair<std::string, Value>> fields) {
  return Value(std::make_shared<Object>(o.type_name(), std::move(fields), o.frozen(), o.slots()));
}

Value keep_tensor(const Tensor& t) { return Value(t); }

// Replaces every container of `kind` in `v` (found anywhere in the tree) by what `replace` makes of it.
Value replace_kind(const Value& v, Value::Kind kind, const std::function<Value(const Value&)>& replace) {
  if (v.kind() == kind) return replace(v);
  switch (v.kind()) {
    case Value::Kind::dict: {
      auto d = std::make_shared<Dict>();
      d->set_type_name(v.as_dict().type_name());
      for (const auto& [k, i] : v.as_dict().entries()) d->set(k, replace_kind(i, kind, replace));
      return Value(d);
    }
    case Value::Kind::object: {
      std::vector<std::pair<std::string, Value>> fields;
      for (const auto& [n, i] : v.as_object().fields()) fields.emplace_back(n, replace_kind(i, kind, replace));
      return keep_object(v.as_object(), std::move(fields));
    }
    default: return v;
  }
}

struct Mutation {
  std::string name;
  Transform transform;
  bool fresh_stager_per_stage = false;
  bool force_pageable = false;
  bool hide_stats = false;
  bool leaf_only_error_paths = false;
  bool keep_sources_alive = false;      // every staged dict is kept: no cache entry ever dies
  bool half_stage_on_failure = false;   // a failed stage still stages the dict's valid "good" entry
  bool caches_before_cycle = false;     // a stage rejected for a cycle still stages (caches) every tensor of the
                                        // dict, as if its copy walk had filled their buffers before finding it
  bool ignores_callers_stream = false;  // the copies wait for an idle stream, not the caller's current one
  bool unlocks_released_again = false;  // buffers released by close() are unlocked again at destruction
  bool no_shared_bytes = false;         // cache_stats() reports no shared bytes
  bool pinned_as_cached = false;        // cache_stats() reports every cached byte as pinned
  bool global_bounce_buffer = false;    // every staged storage passes through one process-wide buffer, unguarded
  bool drop_returns_at_once = false;    // non-blocking: destroying an unwaited handle returns at once (its
                                        // copies run 300 ms later on a thread joined by close() or the
                                        // destructor)
  bool close_skips_in_flight = false;   // non-blocking: close() does nothing while a handle is not waited on
};

// A non-blocking stage's handle that counts itself in `in_flight` until it is waited on or destroyed.
class CountedPending final : public PendingResult {
 public:
  CountedPending(std::unique_ptr<PendingResult> inner, std::shared_ptr<std::atomic<int>> in_flight)
      : inner_(std::move(inner)), in_flight_(std::move(in_flight)) {
    ++*in_flight_;
  }
  ~CountedPending() override { done(); }
  CountedPending(const CountedPending&) = delete;
  CountedPending& operator=(const CountedPending&) = delete;
  Value wait() override {
    Value v = inner_->wait();
    done();
    return v;
  }

 private:
  void done() {
    if (counted_) --*in_flight_;
    counted_ = false;
  }
  std::unique_ptr<PendingResult> inner_;
  std::shared_ptr<std::atomic<int>> in_flight_;
  bool counted_ = true;
};

// A non-blocking stage that starts only when waited on; destroyed unwaited, it hands its start to
// `on_drop`, which runs it later (copies that go on after the handle is gone).
class DeferredPending final : public PendingResult {
 public:
  using Start = std::function<std::unique_ptr<PendingResult>()>;
  DeferredPending(Start start, std::function<void(Start)> on_drop)
      : start_(std::move(start)), on_drop_(std::move(on_drop)) {}
  ~DeferredPending() override {
    if (!waited_) on_drop_(std::move(start_));
  }
  DeferredPending(const DeferredPending&) = delete;
  DeferredPending& operator=(const DeferredPending&) = delete;
  Value wait() override {
    waited_ = true;
    return start_()->wait();
  }

 private:
  Start start_;
  std::function<void(Start)> on_drop_;
  bool waited_ = false;
};

// The storages (address, bytes) of every tensor reachable from `v`.
void collect_ranges(const Value& v, std::vector<std::pair<void*, std::size_t>>& out) {
  (void)rebuild(
      v,
      [&](const Tensor& t) {
        if (t.defined() && t.storage().data() != nullptr && t.storage().nbytes() > 0)
          out.emplace_back(t.storage().data(), t.storage().nbytes());
        return Value(t);
      },
      keep_object);
}

// Every tensor reachable from `v` (attributes too), each node once, so cycles end.
void collect_tensors(const Value& v, std::set<const void*>& seen, std::vector<Tensor>& out) {
  if (v.identity() != nullptr && !seen.insert(v.identity()).second) return;
  switch (v.kind()) {
    case Value::Kind::tensor:
      out.push_back(v.as_tensor());
      for (const auto& [name, a] : v.as_tensor().attrs()) collect_tensors(a, seen, out);
      break;
    case Value::Kind::dict:
      for (const auto& [k, i] : v.as_dict().entries()) collect_tensors(i, seen, out);
      break;
    case Value::Kind::list:
      for (const Value& i : v.as_list().items) collect_tensors(i, seen, out);
      break;
    case Value::Kind::tuple:
      for (const Value& i : v.as_tuple().items()) collect_tensors(i, seen, out);
      break;
    case Value::Kind::object:
      for (const auto& [n, i] : v.as_object().fields()) collect_tensors(i, seen, out);
      break;
    default: break;
  }
}

// Copies every staged storage out to one process-wide buffer and back, 256 KiB at a time, with a
// pause in between and no lock: two stagers doing it at once hand each other's bytes out.
void bounce_through_global_buffer(const Value& staged) {
  static std::array<std::byte, std::size_t{256} << 10> buffer;
  std::vector<std::pair<void*, std::size_t>> ranges;
  collect_ranges(staged, ranges);
  for (const auto& [p, n] : ranges) {
    for (std::size_t at = 0; at < n; at += buffer.size()) {
      const std::size_t len = std::min(buffer.size(), n - at);
      std::memcpy(buffer.data(), static_cast<std::byte*>(p) + at, len);
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      std::memcpy(static_cast<std::byte*>(p) + at, buffer.data(), len);
    }
  }
}

// Wraps the reference stager and distorts what it returns (or how it is built).
class MutantStager final : public StagerUnderTest {
 public:
  MutantStager(std::unique_ptr<StagerUnderTest> inner, const Mutation& m,
               std::function<std::unique_ptr<StagerUnderTest>()> remake)
      : inner_(std::move(inner)), m_(m), remake_(std::move(remake)) {}
  ~MutantStager() override {
    join_dropped();
    inner_.reset();
    // Unlocking what close() already released: whatever lives there now is unlocked too (munlock and
    // cudaHostUnregister do not nest).
    for (const auto& [p, n] : released_) {
      if (cuda::available()) {
        cuda::host_unregister(p);
      } else {
        const auto page = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
        const std::uintptr_t begin = reinterpret_cast<std::uintptr_t>(p) / page * page;
        (void)syscall(SYS_munlock, begin, reinterpret_cast<std::uintptr_t>(p) + n - begin);
      }
    }
  }
  MutantStager(const MutantStager&) = delete;
  MutantStager& operator=(const MutantStager&) = delete;
  Value stage(const Value& sd) override {
    if (m_.fresh_stager_per_stage) inner_ = remake_();
    if (m_.keep_sources_alive) kept_.push_back(sd);
    std::optional<cuda::Stream> idle;
    std::optional<cuda::StreamGuard> guard;
    if (m_.ignores_callers_stream && cuda::available()) {
      idle.emplace(0);
      guard.emplace(idle->handle());
    }
    try {
      if (m_.global_bounce_buffer) {
        Value staged = inner_->stage(sd);
        bounce_through_global_buffer(staged);
        return staged;
      }
      if (m_.unlocks_released_again) {
        Value staged = inner_->stage(sd);
        collect_ranges(staged, returned_);
        return staged;
      }
      return m_.transform ? m_.transform(sd, inner_->stage(sd)) : inner_->stage(sd);
    } catch (const Error& e) {
      if (m_.half_stage_on_failure && sd.kind() == Value::Kind::dict && sd.as_dict().contains(std::string("good"))) {
        (void)inner_->stage(Value::dict({{"good", sd["good"]}}));  // what was copied before the error stays
      }
      if (m_.caches_before_cycle && std::string(e.what()).find("cycle") != std::string::npos) {
        std::set<const void*> seen;
        std::vector<Tensor> tensors;
        collect_tensors(sd, seen, tensors);
        auto copied = std::make_shared<Dict>();  // the tensors without their attributes: no cycle left
        for (std::size_t i = 0; i < tensors.size(); ++i) {
          copied->set(static_cast<std::int64_t>(i), Value(tensors[i].on_storage(tensors[i].storage())));
        }
        try {
          (void)inner_->stage(Value(copied));
        } catch (const Error&) {  // the original error is the one raised
        }
      }
      if (!m_.leaf_only_error_paths) throw;
      // The error names only the last segment of the path ("weight", not "layer0.weight").
      const std::size_t dot = e.path().rfind('.');
      throw Error(e.code(), e.detail(), dot == std::string::npos ? e.path() : e.path().substr(dot + 1));
    }
  }
  std::unique_ptr<PendingResult> stage_async(const Value& sd) override {
    if (m_.close_skips_in_flight) return std::make_unique<CountedPending>(inner_->stage_async(sd), in_flight_);
    if (!m_.drop_returns_at_once) return inner_->stage_async(sd);
    return std::make_unique<DeferredPending>([this, sd] { return inner_->stage_async(sd); },
                                             [this](DeferredPending::Start start) {
                                               const std::lock_guard lock(dropped_mutex_);
                                               // A dropped stage starts 300 ms later on a thread of its own, after the
                                               // one dropped before it.
                                               std::shared_future<void> before = last_dropped_;
                                               auto done = std::make_shared<std::promise<void>>();
                                               last_dropped_ = done->get_future().share();
                                               dropped_.emplace_back([start = std::move(start), before, done] {
                                                 std::this_thread::sleep_for(std::chrono::milliseconds(300));
                                                 if (before.valid()) before.wait();
                                                 try {
                                                   (void)start()->wait();
                                                 } catch (...) {  // a dropped handle's error is dropped with it
                                                 }
                                                 done->set_value();
                                               });
                                             });
  }
  void close() override {
    if (m_.close_skips_in_flight && *in_flight_ > 0) return;
    join_dropped();
    inner_->close();
    for (const auto& [p, n] : returned_) {  // what close() released: no longer page-locked
      if (!probe::page_locked(p, n).yes) released_.emplace_back(p, n);
    }
    returned_.clear();
  }
  std::optional<CacheStats> cache_stats() const override {
    std::optional<CacheStats> stats = inner_->cache_stats();
    if (stats && m_.no_shared_bytes) stats->shared_bytes = 0;
    if (stats && m_.pinned_as_cached) stats->pinned_bytes = stats->cached_bytes;
    return stats;
  }

 private:
  void join_dropped() {
    std::vector<std::thread> threads;
    {
      const std::lock_guard lock(dropped_mutex_);
      threads.swap(dropped_);
    }
    for (std::thread& t : threads) t.join();
  }

  std::shared_ptr<std::atomic<int>> in_flight_ = std::make_shared<std::atomic<int>>(0);  // close_skips_in_flight
  std::mutex dropped_mutex_;  // drop_returns_at_once: the threads running dropped stages
  std::vector<std::thread> dropped_;
  std::shared_future<void> last_dropped_;
  std::vector<std::pair<void*, std::size_t>> returned_;  // unlocks_released_again
  std::vector<std::pair<void*, std::size_t>> released_;
  std::unique_ptr<StagerUnderTest> inner_;
  Mutation m_;
  std::function<std::unique_ptr<StagerUnderTest>()> remake_;
  std::vector<Value> kept_;
};

class MutantImplementation final : public Implementation {
 public:
  explicit MutantImplementation(Mutation m) : m_(std::move(m)), reference_(make_reference_implementation()) {}
  std::string name() const override { return "mutant-" + m_.name; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override {
    Capabilities c = reference_->capabilities();
    c.non_blocking = c.non_blocking && (m_.drop_returns_at_once || m_.close_skips_in_flight);
    if (m_.hide_stats) c.cache_stats = false;
    return c;
  }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) override {
    StagerConfig c = config;
    if (m_.force_pageable) c.pin_memory = c.share_memory = false;
    auto remake = [this, c] { return reference_->make_stager(c); };
    return std::make_unique<MutantStager>(remake(), m_, remake);
  }

 private:
  Mutation m_;
  std::unique_ptr<Implementation> reference_;
};

void expect_caught(Mutation m, const std::vector<std::string>& must_fail, const std::string& control) {
  MutantImplementation impl(std::move(m));
  for (const std::string& id : must_fail)
    EXPECT_EQ(case_outcome(impl, id), Outcome::fail) << impl.name() << " not caught by " << id;
  EXPECT_EQ(case_outcome(impl, control), Outcome::pass) << impl.name() << " should pass the unrelated case " << control;
}

TEST(Mutants, DroppedStorageSharing) {
  expect_caught({"drops-sharing",
                 [](const Value&, const Value& staged) {
                   return rebuild(
                       staged, [](const Tensor& t) { return Value(t.clone()); }, keep_object);
                 }},
                {"stager.views.cpu.pin0_share0", "stager.complex_storage_sharing.cpu.pin0_share0",
                 "stager.layout.transposed.cpu.pin0_share0", "stager.full_contract.cpu.pin0_share0"},
                "stager.different_dtypes.cpu.pin0_share0");
}

TEST(Mutants, ShallowCopyOfCpuSources) {
  expect_caught({"shallow", [](const Value& source, const Value&) { return source; }},
                {"stager.cpu_storage_independence.cpu.pin0_share0", "stager.full_contract.cpu.pin0_share0",
                 "stager.dataclasses.cpu.pin0_share0"},
                "stager.empty_tensors.cpu.pin0_share0");
}

// A stager that turns autograd off on the sources it copies (and never back): the staged dict is
// right, the caller's parameters no longer require grad.
TEST(Mutants, SourcesLoseRequiresGrad) {
  expect_caught({"clears-source-grad",
                 [](const Value& source, const Value& staged) {
                   for (const TensorLeaf& leaf : tensor_leaves(source)) {
                     Tensor t = leaf.tensor;
                     if (t.requires_grad()) t.set_requires_grad(false);
                   }
                   return staged;
                 }},
                {"stager.parameters_staged_plain.cpu.pin0_share0"}, "stager.views.cpu.pin0_share0");
}

// A stager that builds the staged structure once per source dict and afterwards only recopies the
// tensors into their buffers ("a model's state dict keeps its structure"): a step counter, a new
// optimizer entry or a replaced parameter is staged as it was the first time.
TEST(Mutants, StaleSkeleton) {
  auto first_results = std::make_shared<std::map<const void*, std::pair<Value, Value>>>();
  expect_caught(
      {"stale-skeleton",
       [first_results](const Value& source, const Value& staged) {
         // The source is kept with its result, so that no other dict takes its address.
         auto [it, fresh] = first_results->emplace(source.identity(), std::pair{source, staged});
         return fresh ? staged : it->second.second;
       }},
      {"stager.source_changed_between_stages.cpu.pin0_share0", "stager.source_changed_between_stages.cpu.pin1_share1"},
      "stager.caching.cpu.pin0_share0");
}

TEST(Mutants, IgnoredPinningAndSharing) {
  Mutation m{"pageable-only", nullptr};
  m.force_pageable = true;
  m.hide_stats = true;
  expect_caught(m,
                {"stager.tensor_pinned_and_shared.cpu.pin1_share0", "stager.tensor_pinned_and_shared.cpu.pin0_share1",
                 "stager.pin_threshold_default.cpu.pin1_share0", "stager.full_contract.cpu.pin1_share1",
                 "stager.pin_without_accelerator.cpu.pin1_share0"},
                "stager.tensor_pinned_and_shared.cpu.pin0_share0");
}

// The buffer of a storage that grew is the old buffer grown in place: the old result sees the new
// values (as if its buffer were the head of the new one).
TEST(Mutants, GrowsTheOldBufferInPlace) {
  auto previous = std::make_shared<std::map<std::string, Tensor>>();
  Mutation m{"grows-in-place", [previous](const Value&, const Value& staged) {
               if (staged.kind() != Value::Kind::dict) return staged;
               for (const auto& [key, item] : staged.as_dict().entries()) {
                 if (!item.is_tensor() || !std::holds_alternative<std::string>(key)) continue;
                 const std::string name = std::get<std::string>(key);
                 const Tensor& now = item.as_tensor();
                 const auto it = previous->find(name);
                 if (it != previous->end() && it->second.storage().nbytes() < now.storage().nbytes())
                   copy_bytes(it->second.storage(), 0, now.storage(), 0, it->second.storage().nbytes());
                 (*previous)[name] = now;
               }
               return staged;
             }};
  expect_caught(m, {"stager.source_resized.cpu.pin0_share0", "stager.source_resized.cpu.pin1_share1"},
                "stager.views.cpu.pin0_share0");
}

TEST(Mutants, UnlocksReleasedBuffersAgainAtDestruction) {
  Mutation m{"unlocks-released-again", nullptr};
  m.unlocks_released_again = true;
  expect_caught(
      m, {"stager.results_outlive_the_stager.cpu.pin1_share0", "stager.results_outlive_the_stager.cpu.pin1_share1"},
      "stager.results_outlive_the_stager.cpu.pin0_share1");
}

TEST(Mutants, CacheStatsWithoutSharedBytes) {
  Mutation m{"no-shared-bytes", nullptr};
  m.no_shared_bytes = true;
  expect_caught(m, {"stager.pin_zero_byte_never_registered.cpu.pin1_share1"},
                "stager.pin_zero_byte_never_registered.cpu.pin1_share0");
}

TEST(Mutants, CacheStatsReportEveryByteAsPinned) {
  Mutation m{"pinned-as-cached", nullptr};
  m.pinned_as_cached = true;
  expect_caught(
      m,
      {"stager.cache_stats_agree_with_probes.cpu.pin0_share0", "stager.cache_stats_agree_with_probes.cpu.pin0_share1"},
      "stager.cache_stats_agree_with_probes.cpu.pin1_share1");
}

TEST(Mutants, StagersShareAnUnguardedBuffer) {
  Mutation m{"global-bounce-buffer", nullptr};
  m.global_bounce_buffer = true;
  expect_caught(m, {"stager.parallel_stagers.cpu.pin0_share0", "stager.parallel_stagers.cpu.pin1_share1"},
                "stager.views.cpu.pin0_share0");
}

TEST(Mutants, DroppedNonBlockingHandleDoesNotWait) {
  Mutation m{"drop-returns-at-once", nullptr};
  m.drop_returns_at_once = true;
  expect_caught(m,
                {"stager.non_blocking_dropped_handle_waits.cpu.pin0_share0",
                 "stager.non_blocking_dropped_handle_waits.cpu.pin1_share1"},
                "stager.non_blocking_correct_after_wait.cpu.pin0_share0");
}

TEST(Mutants, CloseSkippedWhileAStageIsInFlight) {
  Mutation m{"close-skips-in-flight", nullptr};
  m.close_skips_in_flight = true;
  expect_caught(
      m,
      {"stager.non_blocking_close_in_flight.cpu.pin0_share0", "stager.non_blocking_close_in_flight.cpu.pin1_share0",
       "stager.non_blocking_close_in_flight.cpu.pin0_share1"},
      "stager.non_blocking_correct_after_wait.cpu.pin0_share0");
}

TEST(Mutants, CopiesIgnoreTheCallersStream) {
  if (!cuda::available()) GTEST_SKIP() << cuda::availability().reason;
  Mutation m{"ignores-callers-stream", nullptr};
  m.ignores_callers_stream = true;
  expect_caught(m,
                {"stager.waits_for_producer_stream.stage.cuda.pin0_share0",
                 "stager.waits_for_producer_stream.stage.cuda.pin1_share1"},
                "stager.tensor_pinned_and_shared.cuda.pin1_share1");
}

TEST(Mutants, LostTensorAttributes) {
  expect_caught(
      {"drops-attributes",
       [](const Value&, const Value& staged) {
         return rebuild(
             staged,
             [](const Tensor& t) {
               return Value(Tensor::from_storage(t.storage(), t.dtype(), IntList(t.sizes().begin(), t.sizes().end()),
                                                 IntList(t.strides().begin(), t.strides().end()), t.storage_offset()));
             },
             keep_object);
       }},
      {"stager.tensor_attrs.cpu.pin1_share1", "stager.attribute_tensors_share_memo.cpu.pin0_share0"},
      "stager.views.cpu.pin0_share0");
}

TEST(Mutants, FrozenObjectsThawed) {
  expect_caught({"thaws-frozen",
                 [](const Value&, const Value& staged) {
                   return rebuild(
                       staged, [](const Tensor& t) { return Value(t); },
                       [](const Object& o, std::vector<std::pair<std::string, Value>> f) {
                         return Value(std::make_shared<Object>(o.type_name(), std::move(f), false));
                       });
                 }},
                {"stager.objects_exact.cpu.pin0_share0"}, "stager.dataclasses.cpu.pin0_share0");
}

TEST(Mutants, NoBufferReuse) {
  Mutation m{"no-cache", nullptr};
  m.fresh_stager_per_stage = true;
  m.hide_stats = true;
  expect_caught(m, {"stager.caching.cpu.pin0_share0", "stager.earlier_results_overwritten.cpu.pin0_share0"},
                "stager.views.cpu.pin0_share0");
}

TEST(Mutants, ErrorsNamingOnlyTheLeaf) {
  Mutation m{"leaf-only-paths", nullptr};
  m.leaf_only_error_paths = true;
  expect_caught(
      m,
      {"stager.bad_input.out_of_bounds_view.cpu.pin0_share0", "stager.bad_input.malformed_layout.cpu.pin0_share0",
       "stager.cycle_rejected.tensor_attribute_is_itself.cpu.pin0_share0",
       "stager.cycle_rejected.object_field_is_its_dict.cpu.pin0_share0",
       "stager.cycle_rejected.dict_contains_its_parent.cpu.pin0_share0"},
      "stager.views.cpu.pin0_share0");
}

// Rewrites the staged floating-point elements by value, in place: NaN payloads and signs and the sign
// of zero are lost while every value still compares equal.
void canonicalise_floats(const Tensor& t) {
  if (dtype_category(t.dtype()) != DTypeCategory::floating || t.storage().data() == nullptr) return;
  const std::size_t item = t.element_size();
  auto* bytes = static_cast<std::byte*>(t.storage().data());
  for (std::size_t at = 0; at + item <= t.storage().nbytes(); at += item) {
    const std::span<std::byte> element(bytes + at, item);
    const double value = decode_element(t.dtype(), element);
    if (std::isnan(value)) encode_element(t.dtype(), std::numeric_limits<double>::quiet_NaN(), element);
    if (value == 0.0) encode_element(t.dtype(), 0.0, element);
  }
}

TEST(Mutants, FloatBytesCanonicalised) {
  expect_caught({"canonical-floats",
                 [](const Value&, const Value& staged) {
                   for (const TensorLeaf& leaf : tensor_leaves(staged)) canonicalise_floats(leaf.tensor);
                   return staged;
                 }},
                {"stager.dtype.float32.cpu.pin0_share0", "stager.dtype.bfloat16.cpu.pin0_share0",
                 "stager.dtype.float8_e5m2.cpu.pin0_share0", "stager.different_dtypes.cpu.pin0_share0",
                 "stager.views.cpu.pin0_share0", "stager.full_contract.cpu.pin1_share1"},
                "stager.dtype.int32.cpu.pin0_share0");
}

TEST(Mutants, SourcesKeptAlive) {
  Mutation m{"keeps-sources", nullptr};
  m.keep_sources_alive = true;
  // Caught with the implementation's cache_stats and, without them, by a weak reference to the source.
  expect_caught(
      m,
      {"stager.cache_entry_dies_with_source.cpu.pin0_share0", "stager.cache_entry_dies_with_source.cpu.pin1_share1",
       "stager.dead_source_buffer_not_reused.cpu.pin0_share0"},
      "stager.views.cpu.pin0_share0");
}

TEST(Mutants, CachesWhatWasReachedBeforeACycle) {
  Mutation m{"caches-before-cycle", nullptr};
  m.caches_before_cycle = true;
  expect_caught(m,
                {"stager.cycle_stages_nothing.list_contains_itself.cpu.pin0_share0",
                 "stager.cycle_stages_nothing.dict_contains_its_parent.cpu.pin0_share0",
                 "stager.cycle_stages_nothing.tensor_attribute_is_itself.cpu.pin0_share0"},
                "stager.cycle_rejected.list_contains_itself.cpu.pin0_share0");
}

TEST(Mutants, HalfStagedOnFailure) {
  Mutation m{"half-staged", nullptr};
  m.half_stage_on_failure = true;
  expect_caught(m,
                {"stager.bad_input_stages_nothing.opaque_leaf.cpu.pin0_share0",
                 "stager.bad_input_stages_nothing.malformed_layout.cpu.pin0_share0"},
                "stager.bad_input.opaque_leaf.cpu.pin0_share0");
}

// ---- the Python container kinds and parameters (spec C.1.9, C.1.10) ---------------------------------

TEST(Mutants, DictSubclassesStagedAsPlainDicts) {
  expect_caught({"plain-dicts",
                 [](const Value&, const Value& staged) {
                   const Value out = rebuild(staged, keep_tensor, keep_object);  // new dict nodes throughout
                   std::function<void(const Value&)> clear = [&](const Value& v) {
                     if (v.kind() == Value::Kind::dict) {
                       v.as_dict().set_type_name("");
                       for (const auto& [k, i] : v.as_dict().entries()) clear(i);
                     }
                   };
                   clear(out);
                   return out;
                 }},
                {"stager.python_containers.cpu.pin0_share0"}, "stager.parameters_staged_plain.cpu.pin0_share0");
}

TEST(Mutants, IntKeysReadThroughDoubles) {
  expect_caught({"int-keys-through-doubles",
                 [](const Value&, const Value& staged) {
                   std::function<Value(const Value&)> round = [&](const Value& v) -> Value {
                     if (v.kind() != Value::Kind::dict) return v;
                     auto d = std::make_shared<Dict>();
                     d->set_type_name(v.as_dict().type_name());
                     d->set_default_factory(v.as_dict().default_factory());
                     for (const auto& [k, i] : v.as_dict().entries()) {
                       DictKey key = k;
                       if (const auto* n = std::get_if<std::int64_t>(&key)) {
                         key = static_cast<std::int64_t>(static_cast<double>(*n));
                       }
                       d->set(key, round(i));
                     }
                     return Value(d);
                   };
                   return round(rebuild(staged, keep_tensor, keep_object));
                 }},
                {"stager.full_contract.cpu.pin0_share0"}, "stager.views.cpu.pin0_share0");
}

TEST(Mutants, NamedTuplesStagedAsPlainTuples) {
  expect_caught({"plain-tuples",
                 [](const Value&, const Value& staged) {
                   return replace_kind(staged, Value::Kind::tuple,
                                       [](const Value& t) { return Value::tuple(t.as_tuple().items()); });
                 }},
                {"stager.python_containers.cpu.pin1_share1"}, "stager.objects_exact.cpu.pin0_share0");
}

TEST(Mutants, SetsReturnedAsTheSourceSets) {
  expect_caught({"shared-sets",
                 [](const Value& source, const Value& staged) {
                   auto d = std::make_shared<Dict>(staged.as_dict());
                   for (const auto& [k, v] : source.as_dict().entries()) {
                     if (v.kind() == Value::Kind::set) d->set(k, v);
                   }
                   return Value(d);
                 }},
                {"stager.python_containers.cpu.pin0_share0"}, "stager.objects_exact.cpu.pin0_share0");
}

TEST(Mutants, SetItemsLost) {
  expect_caught({"set-items-lost",
                 [](const Value&, const Value& staged) {
                   return replace_kind(staged, Value::Kind::set, [](const Value& s) {
                     std::vector<Value> items = s.as_set().items();
                     if (!items.empty()) items.pop_back();
                     return Value(std::make_shared<Set>(std::move(items), s.as_set().frozen()));
                   });
                 }},
                {"stager.python_containers.cpu.pin0_share1"}, "stager.objects_exact.cpu.pin0_share0");
}

TEST(Mutants, SlotsObjectsStagedAsDataclasses) {
  expect_caught({"slots-dropped",
                 [](const Value&, const Value& staged) {
                   return rebuild(
                       staged, keep_tensor, [](const Object& o, std::vector<std::pair<std::string, Value>> f) {
                         return Value(std::make_shared<Object>(o.type_name(), std::move(f), o.frozen(), false));
                       });
                 }},
                {"stager.python_containers.cpu.pin0_share0"}, "stager.objects_exact.cpu.pin0_share0");
}

TEST(Mutants, ParametersStagedAsParameters) {
  expect_caught({"keeps-parameters",
                 [](const Value& source, const Value& staged) {
                   auto d = std::make_shared<Dict>(staged.as_dict());
                   for (const auto& [k, v] : source.as_dict().entries()) {
                     if (v.is_tensor() && v.as_tensor().is_parameter()) {
                       d->set(k, staged.as_dict().at(k).as_tensor().as_parameter(v.as_tensor().requires_grad()));
                     }
                   }
                   return Value(d);
                 }},
                {"stager.parameters_staged_plain.cpu.pin0_share0", "stager.parameters_staged_plain.cpu.pin1_share1"},
                "stager.python_containers.cpu.pin0_share0");
}

TEST(Mutants, StagedTensorsRequiringGrad) {
  expect_caught({"requires-grad",
                 [](const Value&, const Value& staged) {
                   for (const TensorLeaf& leaf : tensor_leaves(staged)) {
                     Tensor t = leaf.tensor;
                     t.set_requires_grad(true);
                   }
                   return staged;
                 }},
                {"stager.parameters_staged_plain.cpu.pin0_share0", "stager.full_contract.cpu.pin0_share0"},
                "stager.empty_tensors.cpu.pin0_share0");
}

// ---- distributed values in the stager ---------------------------------------------------------------

// Replaces each top-level DTensor or ShardedTensor of the staged dict.
Transform distributed_values(std::function<Value(const Value& source, const Value& staged)> replace) {
  return [replace](const Value& source, const Value& staged) {
    auto d = std::make_shared<Dict>();
    for (const auto& [k, v] : staged.as_dict().entries()) {
      const bool distributed = v.kind() == Value::Kind::dtensor || v.kind() == Value::Kind::sharded_tensor;
      d->set(k, distributed ? replace(source.as_dict().at(k), v) : v);
    }
    return Value(d);
  };
}

Tensor pageable_copy(const Tensor& t) { return t.clone(); }

TEST(Mutants, DTensorsReturnedAsTheirSources) {
  expect_caught({"dtensor-passthrough", distributed_values([](const Value& source, const Value&) { return source; })},
                {"stager.dtensor_layouts.cpu.pin0_share0.ws4", "stager.dtensor.cpu.pin1_share1.ws2",
                 "stager.dtensor_partial.cpu.pin0_share0.ws2"},
                "stager.views.cpu.pin0_share0");
}

TEST(Mutants, DistributedValuesStagedToPageableMemory) {
  expect_caught({"distributed-pageable", distributed_values([](const Value&, const Value& staged) {
                   if (staged.kind() == Value::Kind::dtensor) {
                     const DTensor& dt = *staged.as_dtensor_node();
                     return Value(std::make_shared<DTensor>(pageable_copy(dt.local()), dt.spec(), dt.rank()));
                   }
                   const ShardedTensor& st = *staged.as_sharded_tensor_node();
                   std::vector<Tensor> tensors;
                   for (const LocalTensorShard& shard : st.local_shards())
                     tensors.push_back(pageable_copy(shard.tensor));
                   return Value(st.with_local_tensors(std::move(tensors)));
                 })},
                {"stager.dtensor.cpu.pin1_share1.ws2", "stager.sharded_tensor.cpu.pin1_share1.ws2"},
                "stager.tensor_pinned_and_shared.cpu.pin1_share1");
}

// A staged DTensor that claims another rank's coordinate: its spec and local tensor are right, so
// only the rank tells it (on every rank but 0).
TEST(Mutants, DTensorRankReset) {
  expect_caught({"dtensor-rank-0", distributed_values([](const Value&, const Value& staged) {
                   if (staged.kind() != Value::Kind::dtensor) return staged;
                   const DTensor& dt = *staged.as_dtensor_node();
                   return Value(std::make_shared<DTensor>(dt.local(), dt.spec(), 0));
                 })},
                {"stager.dtensor.cpu.pin1_share1.ws2", "stager.dtensor_layouts.cpu.pin0_share0.ws4"},
                "stager.sharded_tensor.cpu.pin1_share1.ws2");
}

// Each DTensor or ShardedTensor reached again in the staged dict is wrapped anew over the same staged
// local tensors: values and storage sharing stay right, only identity tells it.
TEST(Mutants, DistributedValuesReachedTwiceSplit) {
  expect_caught({"splits-distributed-twice",
                 [](const Value&, const Value& staged) {
                   std::set<const void*> seen;
                   auto d = std::make_shared<Dict>();
                   for (const auto& [k, v] : staged.as_dict().entries()) {
                     const bool again = (v.kind() == Value::Kind::dtensor || v.kind() == Value::Kind::sharded_tensor) &&
                                        !seen.insert(v.identity()).second;
                     if (!again) {
                       d->set(k, v);
                     } else if (v.kind() == Value::Kind::dtensor) {
                       const DTensor& dt = *v.as_dtensor_node();
                       d->set(k, Value(std::make_shared<DTensor>(dt.local(), dt.spec(), dt.rank())));
                     } else {
                       const ShardedTensor& st = *v.as_sharded_tensor_node();
                       d->set(k, Value(std::make_shared<ShardedTensor>(st.local_shards(), st.metadata(), st.rank())));
                     }
                   }
                   return Value(d);
                 }},
                {"stager.dtensor_layouts.cpu.pin0_share0.ws4", "stager.sharded_tensor.cpu.pin1_share1.ws2"},
                "stager.dtensor_partial.cpu.pin0_share0.ws2");
}

TEST(Mutants, LocalShardOffsetsRebased) {
  expect_caught({"rebased-shards", distributed_values([](const Value&, const Value& staged) {
                   if (staged.kind() != Value::Kind::sharded_tensor) return staged;
                   const ShardedTensor& st = *staged.as_sharded_tensor_node();
                   std::vector<LocalTensorShard> shards = st.local_shards();
                   for (LocalTensorShard& shard : shards)
                     std::fill(shard.metadata.offsets.begin(), shard.metadata.offsets.end(), 0);
                   return Value(std::make_shared<ShardedTensor>(std::move(shards), st.metadata(), st.rank()));
                 })},
                {"stager.sharded_tensor.cpu.pin1_share1.ws2"}, "stager.dtensor.cpu.pin1_share1.ws2");
}

}  // namespace
}  // namespace stagekit::conformance
