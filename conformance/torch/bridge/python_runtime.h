// python_runtime.h (internal to the torch bridge) — the embedded interpreter: starting it, the Python
// modules the bridge calls, turning Python exceptions into stagekit errors, and the fork-server hooks
// that let every case's process start with torch already imported.
//
// Invariants: the interpreter starts at most once per process and is never finalised; outside
// bridge calls no thread holds the GIL (every bridge entry point takes it with
// pybind11::gil_scoped_acquire); the modules below are imported once and kept.
#pragma once

#include <memory>
#include <string>

#include <pybind11/embed.h>

#include "stagekit/core/error.h"
#include "stagekit/testing/child_process.h"

namespace stagekit::torch_bridge {

namespace py = pybind11;

// Starts the interpreter (once; a process forked from a prepared one finds it running), puts the
// stagekit_torch package on sys.path, and returns with the GIL released.
void ensure_python();

// The modules the bridge calls (the GIL must be held).
struct Modules {
  py::module_ torch;
  py::module_ compat;
  py::module_ convert;
  py::module_ protocol;
  py::module_ snapshot;     // stagekit_torch.snapshot: is the caller's state dict as it was?
  py::object tensor_type;   // torch.Tensor
  py::object opaque_type;   // stagekit_torch.convert.OpaqueLeaf
  py::object host_buffer;   // the bridge's buffer over a stagekit host storage
  py::object is_dataclass;  // dataclasses.is_dataclass
  py::object frombuffer;    // torch.frombuffer
  py::object uint8;         // torch.uint8
};
[[nodiscard]] const Modules& modules();

// The Python exception being handled, as a stagekit error naming `path` (when not empty): its type,
// message and the last traceback lines, with the code stagekit_torch.convert.error_code() gives.
// Take the error, let `e` go (its traceback holds the frames of the failed call), collect garbage
// (collect_garbage), then rethrow it.
[[nodiscard]] std::unique_ptr<Error> python_error(py::error_already_set& e, const std::string& what,
                                                  const std::string& path = {});

// gc.collect(): what a failed or closed stager left in reference cycles goes now, not at some later
// allocation, so that the case's release checks see it gone.
void collect_garbage();

// Holds Python's cyclic garbage collector off for its lifetime (a conversion makes no cycles, and
// a collection in the middle of one walks every object the case holds); restores what was before.
class GarbageCollectorPause {
 public:
  GarbageCollectorPause();
  ~GarbageCollectorPause();
  GarbageCollectorPause(const GarbageCollectorPause&) = delete;
  GarbageCollectorPause& operator=(const GarbageCollectorPause&) = delete;

 private:
  bool was_enabled_;
};

// Hooks of a fork server whose children start with the interpreter running and torch imported.
[[nodiscard]] std::shared_ptr<const testing::ForkServer> warm_python_fork_server();

}  // namespace stagekit::torch_bridge
