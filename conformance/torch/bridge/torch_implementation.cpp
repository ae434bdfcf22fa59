#include "torch_implementation.h"

#include <cstdint>
#include <exception>
#include <future>
#include <memory>
#include <type_traits>

#include <fmt/format.h>

#include "conversion.h"
#include "host_buffer.h"
#include "python_runtime.h"
#include "stagekit/core/cuda.h"

namespace stagekit::torch_bridge {
namespace {

using conformance::CacheStats;
using conformance::Capabilities;
using conformance::PendingResult;
using conformance::StagerConfig;
using conformance::StagerUnderTest;

// Runs `f` (with the GIL held); a Python exception becomes a stagekit error (see python_error),
// after the garbage it left behind is collected.
template <class F>
auto guarded(const std::string& what, F&& f) -> decltype(f()) {
  std::unique_ptr<Error> error;
  try {
    return f();
  } catch (py::error_already_set& e) {
    error = python_error(e, what);
  }
  collect_garbage();
  error->rethrow();
  std::terminate();  // rethrow() does not return
}

// For the scope of a stager's call, with the GIL held: torch's current stream is the caller's
// (cuda::current_stream(), which a case may set to a stream still writing the sources: spec C.2.3),
// so that a stager ordering its copies after torch.cuda.current_stream() orders them after the
// caller's work. Nothing changes where the caller's stream is the default one.
class CallersStream {
 public:
  CallersStream() {
    if (!cuda::available() || cuda::current_stream() == nullptr) return;
    context_ = guarded("making the caller's CUDA stream torch's current stream", [&] {
      py::object context = modules().compat.attr("callers_stream")(
          reinterpret_cast<std::uintptr_t>(cuda::current_stream()), cuda::current_device());
      context.attr("__enter__")();
      return context;
    });
  }
  ~CallersStream() {
    if (!context_) return;
    try {
      context_.attr("__exit__")(py::none(), py::none(), py::none());
    } catch (py::error_already_set&) {  // leaving a stream context raises nothing torch documents
    }
  }
  CallersStream(const CallersStream&) = delete;
  CallersStream& operator=(const CallersStream&) = delete;

 private:
  py::object context_;
};

// Drops a Python reference with the GIL held (for members of objects destroyed without it).
void release(py::object& o) {
  if (!o) return;
  py::gil_scoped_acquire gil;
  o = py::object();
}

// With the GIL held: the mirrored storages and the Python garbage a case let go go now, so that what
// the case probes next (page-locked, shared memory, descriptors) no longer counts them.
void release_let_go() {
  StorageMirror::instance().prune(/*force=*/true);
  collect_garbage();
}

// Drops a Python stager and what it let go, taking the GIL (for destructors).
void drop_stager(py::object& stager) {
  py::gil_scoped_acquire gil;
  stager = py::object();
  release_let_go();
}

class TorchPending final : public PendingResult {
 public:
  explicit TorchPending(py::object staged) : staged_(std::move(staged)) {}
  // Destroyed unwaited, it waits for the copies first (the adapter's contract): torch's CPU copies
  // are done on return, its CUDA copies once the device is synchronised.
  ~TorchPending() override {
    if (!staged_) return;
    py::gil_scoped_acquire gil;
    try {
      const py::object cuda = modules().torch.attr("cuda");
      if (py::cast<bool>(cuda.attr("is_available")())) cuda.attr("synchronize")();
    } catch (py::error_already_set&) {  // a dropped handle's error is dropped with it
    }
    staged_ = py::object();
  }
  TorchPending(const TorchPending&) = delete;
  TorchPending& operator=(const TorchPending&) = delete;

  Value wait() override {
    py::gil_scoped_acquire gil;
    const Modules& mods = modules();
    guarded("torch.cuda.synchronize()", [&] {
      if (py::cast<bool>(mods.torch.attr("cuda").attr("is_available")())) mods.torch.attr("cuda").attr("synchronize")();
    });
    Value out = guarded("converting the staged state dict back", [&] { return from_torch(staged_); });
    staged_ = py::object();
    return out;
  }

 private:
  py::object staged_;
};

// stage() split for benchmarks (see conformance::SplitStage): conversions outside run().
class TorchPreparedStage final : public conformance::PreparedStage {
 public:
  TorchPreparedStage(py::object stager, py::object source) : stager_(std::move(stager)), source_(std::move(source)) {}
  ~TorchPreparedStage() override {
    py::gil_scoped_acquire gil;
    stager_ = py::object();
    source_ = py::object();
    staged_ = py::object();
  }
  TorchPreparedStage(const TorchPreparedStage&) = delete;
  TorchPreparedStage& operator=(const TorchPreparedStage&) = delete;

  void run() override {
    py::gil_scoped_acquire gil;
    staged_ = guarded("stage()", [&] { return stager_.attr("stage")(source_); });
    const Modules& mods = modules();
    guarded("torch.cuda.synchronize()", [&] {
      if (py::cast<bool>(mods.torch.attr("cuda").attr("is_available")())) mods.torch.attr("cuda").attr("synchronize")();
    });
  }

  // The Python objects of the result are dropped with this object, not here: freeing them is not
  // part of the conversion.
  Value result() override {
    py::gil_scoped_acquire gil;
    return guarded("converting the staged state dict back", [&] { return from_torch(staged_); });
  }

 private:
  py::object stager_;
  py::object source_;
  py::object staged_;
};

class TorchStager final : public StagerUnderTest, public conformance::SplitStage {
 public:
  TorchStager(py::object stager, bool has_cache_stats) : stager_(std::move(stager)), cache_stats_(has_cache_stats) {}
  ~TorchStager() override { drop_stager(stager_); }
  TorchStager(const TorchStager&) = delete;
  TorchStager& operator=(const TorchStager&) = delete;

  Value stage(const Value& state_dict) override {
    py::gil_scoped_acquire gil;
    py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
    const py::object before = snapshot(source);
    py::object staged = guarded("stage()", [&] {
      const CallersStream callers_stream;
      return stager_.attr("stage")(source);
    });
    require_unchanged(source, before, "stage()");
    require_new_nodes(source, staged, "stage()");
    source = py::object();
    return guarded("converting the staged state dict back", [&] { return from_torch(staged); });
  }

  std::unique_ptr<conformance::PreparedStage> prepare(const Value& state_dict) override {
    py::gil_scoped_acquire gil;
    py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
    return std::make_unique<TorchPreparedStage>(stager_, std::move(source));
  }

  std::unique_ptr<PendingResult> stage_async(const Value& state_dict) override {
    py::gil_scoped_acquire gil;
    py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
    const py::object before = snapshot(source);
    py::object staged = guarded("stage(non_blocking=True)", [&] {
      const CallersStream callers_stream;
      return stager_.attr("stage")(source, py::arg("non_blocking") = true);
    });
    require_unchanged(source, before, "stage(non_blocking=True)");
    require_new_nodes(source, staged, "stage(non_blocking=True)");
    return std::make_unique<TorchPending>(std::move(staged));
  }

  void close() override {
    py::gil_scoped_acquire gil;
    guarded("close()", [&] {
      if (py::hasattr(stager_, "close")) stager_.attr("close")();
    });
    release_let_go();
  }

  // The caller's state dict as the stager gets it (stagekit_torch.snapshot): the tree itself lives
  // only on this side of the route, so the bridge checks that a stage left it as it was.
  static py::object snapshot(const py::object& source) {
    return guarded("taking a snapshot of the state dict", [&] { return modules().snapshot.attr("snapshot")(source); });
  }
  static void require_unchanged(const py::object& source, const py::object& before, std::string_view call) {
    const py::object change = guarded("checking the state dict after the stage",
                                      [&] { return modules().snapshot.attr("first_change")(source, before); });
    if (change.is_none()) return;
    const auto where = py::cast<py::tuple>(change);
    throw InvalidArgument(
        fmt::format("{} changed the caller's state dict (a stager must leave its input as it was): {}", call,
                    py::cast<std::string>(where[1])),
        py::cast<std::string>(where[0]));
  }

  // A staged tree is new all through (spec B.1.4): a container or tensor of the caller's handed back
  // is shared with the live state dict, which the conversion back (always new stagekit nodes) would hide.
  static void require_new_nodes(const py::object& source, const py::object& staged, std::string_view call) {
    const py::object shared = guarded("comparing the staged state dict with the caller's",
                                      [&] { return modules().snapshot.attr("shared_node")(source, staged); });
    if (shared.is_none()) return;
    const auto where = py::cast<py::tuple>(shared);
    throw InvalidArgument(fmt::format("{} returned the caller's own {} object instead of a copy (a staged state dict "
                                      "shares no container or tensor with its source: spec B.1.4)",
                                      call, py::cast<std::string>(where[1])),
                          py::cast<std::string>(where[0]));
  }

  std::optional<CacheStats> cache_stats() const override {
    if (!cache_stats_) return std::nullopt;
    py::gil_scoped_acquire gil;
    return guarded("cache_stats()", [&] {
      const py::dict d = stager_.attr("cache_stats")();
      CacheStats s;
      s.cached_storages = py::cast<std::size_t>(d["cached_storages"]);
      s.cached_bytes = py::cast<std::uint64_t>(d["cached_bytes"]);
      s.pinned_bytes = d.contains("pinned_bytes") ? py::cast<std::uint64_t>(d["pinned_bytes"]) : 0;
      s.shared_bytes = d.contains("shared_bytes") ? py::cast<std::uint64_t>(d["shared_bytes"]) : 0;
      return s;
    });
  }

 private:
  py::object stager_;
  bool cache_stats_;
};

// A Python concurrent.futures.Future as a C++ future: `convert` turns its result into T, with the
// GIL held, in the thread that completes it; a Python exception or a failed conversion becomes the
// future's error (a stagekit error naming `what`).
template <class T, class Convert>
std::shared_future<T> watch_future(const py::object& future, std::string what, Convert convert) {
  auto promise = std::make_shared<std::promise<T>>();
  std::shared_future<T> watched = promise->get_future().share();
  const py::cpp_function done([promise, what = std::move(what), convert](const py::object& completed) {
    try {
      py::object result;
      try {
        result = completed.attr("result")();
      } catch (py::error_already_set& e) {
        python_error(e, what)->rethrow();
      }
      if constexpr (std::is_void_v<T>) {
        convert(result);
        promise->set_value();
      } else {
        promise->set_value(convert(result));
      }
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  future.attr("add_done_callback")(done);
  return watched;
}

bool is_future(const py::object& o) { return py::hasattr(o, "add_done_callback") && py::hasattr(o, "result"); }

// A DefaultStager or BlockingAsyncStager of the async-staging surface (stagekit_torch.protocol).
class TorchAsyncStager final : public conformance::AsyncStagerUnderTest {
 public:
  TorchAsyncStager(py::object stager, std::string kind) : stager_(std::move(stager)), kind_(std::move(kind)) {}
  ~TorchAsyncStager() override { drop_stager(stager_); }
  TorchAsyncStager(const TorchAsyncStager&) = delete;
  TorchAsyncStager& operator=(const TorchAsyncStager&) = delete;

  conformance::StageReturn stage(const Value& state_dict) override {
    py::gil_scoped_acquire gil;
    py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
    py::object before = TorchStager::snapshot(source);
    const std::string call = kind_ + ".stage()";
    py::object staged = guarded(call, [&] {
      const CallersStream callers_stream;
      return stager_.attr("stage")(source);
    });
    conformance::StageReturn out;
    if (!is_future(staged)) {
      TorchStager::require_unchanged(source, before, call);
      TorchStager::require_new_nodes(source, staged, call);
      out.state_dict = guarded("converting the staged state dict back", [&] { return from_torch(staged); });
      return out;
    }
    out.future = watch_future<Value>(staged, call, [source, before, call](const py::object& result) {
      TorchStager::require_unchanged(source, before, call);
      TorchStager::require_new_nodes(source, result, call);
      return guarded("converting the staged state dict back", [&] { return from_torch(result); });
    });
    return out;
  }

  void synchronize_staging() override {
    py::gil_scoped_acquire gil;
    guarded(kind_ + ".synchronize_staging()", [&] { stager_.attr("synchronize_staging")(); });
  }

  [[nodiscard]] bool should_synchronize_after_execute() const override {
    py::gil_scoped_acquire gil;
    return guarded(kind_ + ".should_synchronize_after_execute",
                   [&] { return py::cast<bool>(stager_.attr("should_synchronize_after_execute")); });
  }

  void close() override {
    py::gil_scoped_acquire gil;
    guarded(kind_ + ".close()", [&] { stager_.attr("close")(); });
    release_let_go();
  }

  [[nodiscard]] const py::object& object() const noexcept { return stager_; }

 private:
  py::object stager_;
  std::string kind_;
};

}  // namespace

TorchImplementation::TorchImplementation(const std::string& target) {
  ensure_python();
  py::gil_scoped_acquire gil;
  guarded(target.empty() ? std::string("loading PyTorch's StateDictStager")
                         : fmt::format("loading the factory '{}'", target),
          [&] {
            const Modules& mods = modules();
            const py::tuple loaded = mods.protocol.attr("load_factory")(target);
            factory_ = loaded[0];
            const py::tuple described = mods.protocol.attr("describe")(factory_, loaded[1]);
            name_ = py::cast<std::string>(described[0]);
            version_ = py::cast<std::string>(described[1]);
            const py::dict caps = mods.protocol.attr("capabilities")(factory_);
            auto flag = [&](const char* key) { return py::cast<bool>(caps[key]); };
            caps_.pin_memory = flag("pin_memory");
            caps_.share_memory = flag("share_memory");
            caps_.cuda_sources = flag("cuda_sources");
            caps_.non_blocking = flag("non_blocking");
            caps_.cache_stats = flag("cache_stats");
            caps_.dtensor = flag("dtensor");
            caps_.sharded_tensor = flag("sharded_tensor");
            caps_.replication = false;  // the route has no replication or utilities surface (yet)
            caps_.state_dict_utilities = false;
            caps_.async_staging = flag("async_staging");
            if (caps_.async_staging) async_staging_ = mods.protocol.attr("async_staging")(factory_);
          });
}

TorchImplementation::~TorchImplementation() {
  release(factory_);
  release(async_staging_);
}

std::unique_ptr<conformance::AsyncStagerUnderTest> TorchImplementation::make_default_stager(
    const conformance::StagingOptions& o) {
  py::gil_scoped_acquire gil;
  const std::string call = fmt::format("DefaultStager(StagingOptions({}, {}, {}, {}))", o.use_pinned_memory,
                                       o.use_shared_memory, o.use_async_staging, o.use_non_blocking_copy);
  py::object stager = guarded(call, [&] {
    return async_staging_.attr("default_stager")(o.use_pinned_memory, o.use_shared_memory, o.use_async_staging,
                                                 o.use_non_blocking_copy);
  });
  return std::make_unique<TorchAsyncStager>(std::move(stager), "DefaultStager");
}

std::unique_ptr<conformance::AsyncStagerUnderTest> TorchImplementation::make_blocking_async_stager(
    const conformance::BlockingAsyncStagerConfig& c) {
  py::gil_scoped_acquire gil;
  py::object stager =
      guarded(fmt::format("BlockingAsyncStager(cache_staged_state_dict={}, type_check={})", c.cache_staged_state_dict,
                          c.type_check),
              [&] { return async_staging_.attr("blocking_async_stager")(c.cache_staged_state_dict, c.type_check); });
  return std::make_unique<TorchAsyncStager>(std::move(stager), "BlockingAsyncStager");
}

conformance::AsyncSaveReturn TorchImplementation::async_save(const Value& state_dict, const std::string& directory,
                                                             conformance::AsyncStagerUnderTest* stager) {
  py::gil_scoped_acquire gil;
  py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
  py::object py_stager = py::none();
  if (stager != nullptr) {
    const auto* mine = dynamic_cast<const TorchAsyncStager*>(stager);
    if (mine == nullptr) throw InvalidArgument("async_save: the stager was not made by this implementation");
    py_stager = mine->object();
  }
  const py::tuple futures = guarded(
      "async_save()", [&] { return py::tuple(async_staging_.attr("async_save")(source, directory, py_stager)); });
  conformance::AsyncSaveReturn out;
  out.staging_completed = watch_future<void>(futures[0], "async_save()'s staging", [](const py::object&) {});
  const std::shared_future<std::string> upload =
      watch_future<std::string>(futures[1], "async_save()'s upload",
                                [](const py::object& result) { return py::cast<std::string>(py::str(result)); });
  // Dropping the response waits for the upload (the adapter's contract): the last copy of a future of
  // std::async waits for its thread, which waits for Python's upload (the caller does not hold the GIL).
  out.upload = std::async(std::launch::async, [upload] { return upload.get(); }).share();
  return out;
}

Value TorchImplementation::load_checkpoint(const std::string& directory) {
  py::gil_scoped_acquire gil;
  py::object loaded = guarded("load_checkpoint()", [&] { return async_staging_.attr("load_checkpoint")(directory); });
  return guarded("converting the loaded state dict back", [&] { return from_torch(loaded); });
}

std::unique_ptr<StagerUnderTest> TorchImplementation::make_stager(const StagerConfig& config) {
  py::gil_scoped_acquire gil;
  py::object stager = guarded("the factory", [&] {
    return modules().protocol.attr("make_stager")(factory_, config.pin_memory, config.share_memory,
                                                  config.pin_memory_min_bytes);
  });
  return std::make_unique<TorchStager>(std::move(stager), caps_.cache_stats);
}

}  // namespace stagekit::torch_bridge
