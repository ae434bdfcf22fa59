#include "python_runtime.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include <fmt/format.h>

#include "host_buffer.h"

namespace stagekit::torch_bridge {
namespace {

std::once_flag g_started;
Modules* g_modules = nullptr;   // never freed: the interpreter is never finalised
PyGILState_STATE g_fork_gil{};  // the GIL state taken around a fork server's fork

// Where the stagekit_torch package is: $STAGEKIT_TORCH_PYTHON, next to an installed executable
// (<prefix>/share/stagekit/python), or the source tree this build came from.
std::string package_dir() {
  if (const char* env = std::getenv("STAGEKIT_TORCH_PYTHON"); env != nullptr && *env != '\0') return env;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto installed = exe.parent_path().parent_path() / "share" / "stagekit" / "python";
    if (std::filesystem::exists(installed / "stagekit_torch", ec)) return installed.string();
  }
  return STAGEKIT_TORCH_PYTHON_DIR;
}

void start() {
  if (!Py_IsInitialized()) {
    // No signal handlers: Ctrl-C and the runner's signals keep their C++ meaning.
    py::initialize_interpreter(false, 0, nullptr, false);
    py::module_::import("sys").attr("path").attr("insert")(0, package_dir());
    PyEval_SaveThread();
  } else if (PyGILState_Check() != 0) {
    PyEval_SaveThread();  // forked while holding it: let other threads in
  }
}

}  // namespace

void ensure_python() { std::call_once(g_started, start); }

const Modules& modules() {
  if (g_modules == nullptr) {
    auto* m = new Modules;
    m->torch = py::module_::import("torch");
    m->compat = py::module_::import("stagekit_torch.compat");
    m->convert = py::module_::import("stagekit_torch.convert");
    m->protocol = py::module_::import("stagekit_torch.protocol");
    m->snapshot = py::module_::import("stagekit_torch.snapshot");
    m->tensor_type = m->torch.attr("Tensor");
    m->opaque_type = m->convert.attr("OpaqueLeaf");
    m->host_buffer = host_buffer_type();
    m->is_dataclass = py::module_::import("dataclasses").attr("is_dataclass");
    m->frombuffer = m->torch.attr("frombuffer");
    m->uint8 = m->torch.attr("uint8");
    g_modules = m;
  }
  return *g_modules;
}

std::unique_ptr<Error> python_error(py::error_already_set& e, const std::string& what, const std::string& path) {
  std::string text = e.what();
  std::string code = "internal";
  try {
    text = py::cast<std::string>(modules().convert.attr("describe_exception")(e.value()));
    code = py::cast<std::string>(modules().convert.attr("error_code")(e.value()));
  } catch (const std::exception&) {
    // keep pybind11's own description
  }
  const std::string detail = fmt::format("{} raised {}", what, text);
  if (code == "invalid_argument") return std::make_unique<InvalidArgument>(detail, path);
  if (code == "unsupported") return std::make_unique<Unsupported>(detail, path);
  if (code == "resource_exhausted") return std::make_unique<ResourceExhausted>(detail, path);
  if (code == "io") return std::make_unique<IoError>(detail, path);
  return std::make_unique<InternalError>(detail, path);
}

void collect_garbage() { py::module_::import("gc").attr("collect")(); }

GarbageCollectorPause::GarbageCollectorPause() : was_enabled_(PyGC_Disable() != 0) {}

GarbageCollectorPause::~GarbageCollectorPause() {
  if (was_enabled_) PyGC_Enable();
}

std::shared_ptr<const testing::ForkServer> warm_python_fork_server() {
  auto server = std::make_shared<testing::ForkServer>();
  server->prepare = [] {
    ensure_python();
    py::gil_scoped_acquire gil;
    (void)modules();  // imports torch once, for every case
  };
  server->before_fork = [] {
    g_fork_gil = PyGILState_Ensure();
    PyOS_BeforeFork();
  };
  server->after_fork_parent = [] {
    PyOS_AfterFork_Parent();
    PyGILState_Release(g_fork_gil);
  };
  server->after_fork_child = [] {
    PyOS_AfterFork_Child();
    PyGILState_Release(g_fork_gil);
  };
  return server;
}

}  // namespace stagekit::torch_bridge
