#include "torch_implementation.h"

#include <exception>

#include <fmt/format.h>

#include "conversion.h"
#include "host_buffer.h"
#include "python_runtime.h"

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

// Drops a Python reference with the GIL held (for members of objects destroyed without it).
void release(py::object& o) {
  if (!o) return;
  py::gil_scoped_acquire gil;
  o = py::object();
}

class TorchPending final : public PendingResult {
 public:
  explicit TorchPending(py::object staged) : staged_(std::move(staged)) {}
  ~TorchPending() override { release(staged_); }
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
  ~TorchStager() override {
    py::gil_scoped_acquire gil;
    stager_ = py::object();
    StorageMirror::instance().prune(/*force=*/true);
    collect_garbage();
  }
  TorchStager(const TorchStager&) = delete;
  TorchStager& operator=(const TorchStager&) = delete;

  Value stage(const Value& state_dict) override {
    py::gil_scoped_acquire gil;
    py::object source = guarded("converting the state dict to torch", [&] { return to_torch(state_dict); });
    const py::object before = snapshot(source);
    py::object staged = guarded("stage()", [&] { return stager_.attr("stage")(source); });
    require_unchanged(source, before, "stage()");
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
    py::object staged = guarded("stage(non_blocking=True)",
                                [&] { return stager_.attr("stage")(source, py::arg("non_blocking") = true); });
    require_unchanged(source, before, "stage(non_blocking=True)");
    return std::make_unique<TorchPending>(std::move(staged));
  }

  void close() override {
    py::gil_scoped_acquire gil;
    guarded("close()", [&] {
      if (py::hasattr(stager_, "close")) stager_.attr("close")();
    });
    StorageMirror::instance().prune(/*force=*/true);  // what the case let go goes now
    collect_garbage();
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
          });
}

TorchImplementation::~TorchImplementation() { release(factory_); }

std::unique_ptr<StagerUnderTest> TorchImplementation::make_stager(const StagerConfig& config) {
  py::gil_scoped_acquire gil;
  py::object stager = guarded("the factory", [&] {
    return modules().protocol.attr("make_stager")(factory_, config.pin_memory, config.share_memory,
                                                  config.pin_memory_min_bytes);
  });
  return std::make_unique<TorchStager>(std::move(stager), caps_.cache_stats);
}

}  // namespace stagekit::torch_bridge
