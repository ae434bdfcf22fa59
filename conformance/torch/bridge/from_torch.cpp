// torch objects -> stagekit value (see conversion.h).
#include <cstring>
#include <unordered_map>

#include <fmt/format.h>

#include "conversion.h"
#include "host_buffer.h"
#include "python_runtime.h"
#include "stagekit/core/state_path.h"

namespace stagekit::torch_bridge {
namespace {

// Releases the reference a wrapped torch storage's memory holds on its Python storage object.
void release_python_reference(void* /*data*/, void* context) noexcept {
  py::gil_scoped_acquire gil;
  Py_DECREF(static_cast<PyObject*>(context));
}

IntList int_list(const py::handle& sequence) {
  IntList out;
  for (auto item : sequence) out.push_back(py::cast<std::int64_t>(item));
  return out;
}

class FromTorch {
 public:
  FromTorch() : mods_(modules()), tensor_facts_(mods_.convert.attr("tensor_facts")) {}

  Value convert(const py::handle& o) {
    PyObject* p = o.ptr();
    if (p == Py_None) return Value();
    if (PyBool_Check(p)) return Value(p == Py_True);
    if (PyLong_Check(p)) {
      int overflow = 0;
      const long long v = PyLong_AsLongLongAndOverflow(p, &overflow);
      if (overflow != 0) throw InvalidArgument("an int that does not fit in 64 bits", path_.str());
      return Value(static_cast<std::int64_t>(v));
    }
    if (PyFloat_Check(p)) return Value(PyFloat_AS_DOUBLE(p));
    if (PyUnicode_Check(p)) return Value(py::cast<std::string>(o));
    if (PyBytes_Check(p)) {
      const std::string s = py::cast<std::string>(o);
      Bytes b;
      b.data.resize(s.size());
      std::memcpy(b.data.data(), s.data(), s.size());
      return Value(std::move(b));
    }
    if (auto it = memo_.find(p); it != memo_.end()) return it->second;
    if (PyObject_IsInstance(p, mods_.tensor_type.ptr()) == 1) return tensor(o);
    if (PyDict_Check(p)) {
      auto node = std::make_shared<Dict>();
      Value out(node);
      remember(p, out);
      for (auto [k, item] : py::reinterpret_borrow<py::dict>(o)) {
        if (PyBool_Check(k.ptr()) || !(PyUnicode_Check(k.ptr()) || PyLong_Check(k.ptr()))) {
          throw InvalidArgument(fmt::format("a dict key of type {} (stagekit keys are str or int)",
                                            Py_TYPE(k.ptr())->tp_name),
                                path_.str());
        }
        DictKey key = PyUnicode_Check(k.ptr()) ? DictKey(py::cast<std::string>(k)) : DictKey(py::cast<std::int64_t>(k));
        PathScope scope(path_, key);
        node->set(key, convert(item));
      }
      return out;
    }
    if (PyList_Check(p)) {
      auto node = std::make_shared<List>();
      Value out(node);
      remember(p, out);
      const auto list = py::reinterpret_borrow<py::list>(o);
      node->items.reserve(list.size());
      for (std::size_t i = 0; i < list.size(); ++i) {
        PathScope scope(path_, i);
        node->items.push_back(convert(list[i]));
      }
      return out;
    }
    if (PyTuple_Check(p)) {
      const auto tuple = py::reinterpret_borrow<py::tuple>(o);
      std::vector<Value> items;
      items.reserve(tuple.size());
      for (std::size_t i = 0; i < tuple.size(); ++i) {
        PathScope scope(path_, i);
        items.push_back(convert(tuple[i]));
      }
      return remember(p, Value::tuple(std::move(items)));
    }
    if (PyObject_IsInstance(p, mods_.opaque_type.ptr()) == 1) {
      return remember(p, Value::opaque(py::cast<std::string>(o.attr("type_name"))));
    }
    if (py::cast<bool>(mods_.is_dataclass(o)) && !PyType_Check(p)) return object(o);
    throw InvalidArgument(fmt::format("a Python {} cannot be converted to a stagekit value", Py_TYPE(p)->tp_name),
                          path_.str());
  }

 private:
  Value remember(PyObject* p, Value v) {
    memo_.emplace(p, v);
    keep_alive_.push_back(py::reinterpret_borrow<py::object>(p));  // ids stay unique for the walk
    return v;
  }

  Storage storage_for(std::int64_t key, const py::object& storage, std::uintptr_t address, std::size_t nbytes,
                      const std::string& device_type, int device_index) {
    if (auto it = storages_.find(key); it != storages_.end()) return it->second;
    std::optional<Storage> found = StorageMirror::instance().source_of(key);
    if (!found) {
      Device device = Device::cpu();
      if (device_type == "cuda") {
        device = Device::cuda(device_index);
      } else if (device_type != "cpu") {
        throw InvalidArgument(fmt::format("a tensor on device type '{}' (stagekit knows cpu and cuda)", device_type),
                              path_.str());
      }
      PyObject* ref = storage.ptr();
      Py_INCREF(ref);
      found = Storage::from_data_ptr(DataPtr(reinterpret_cast<void*>(address), nbytes, device,
                                             device.is_cuda() ? MemoryKind::device : MemoryKind::pageable, ref,
                                             &release_python_reference));
    }
    return storages_.emplace(key, *found).first->second;
  }

  Value tensor(const py::handle& t) {
    const py::tuple f = tensor_facts_(t);
    const auto key = py::cast<std::int64_t>(f[0]);
    const py::object dtype_name = f[6];
    if (dtype_name.is_none()) {
      throw Unsupported(fmt::format("a tensor of dtype {} (stagekit has no such dtype)",
                                    py::cast<std::string>(py::str(t.attr("dtype")))),
                        path_.str());
    }
    const auto dtype = dtype_from_name(py::cast<std::string>(dtype_name));
    if (!dtype) throw Unsupported("a tensor of a dtype stagekit lacks", path_.str());
    const Storage storage = storage_for(key, f[1], py::cast<std::uintptr_t>(f[2]), py::cast<std::size_t>(f[3]),
                                        py::cast<std::string>(f[4]), py::cast<int>(f[5]));
    Tensor out;
    try {
      out = Tensor::from_storage(storage, *dtype, int_list(f[7]), int_list(f[8]),
                                 py::cast<std::int64_t>(f[9]));
    } catch (const Error& e) {
      throw InvalidArgument(fmt::format("the returned tensor is not valid: {}", e.detail()), path_.str());
    }
    remember(t.ptr(), Value(out));  // before the attributes, which may reach this tensor again
    if (!f[10].is_none()) {
      for (auto [name, value] : py::reinterpret_borrow<py::dict>(f[10])) {
        const std::string attr = py::cast<std::string>(name);
        PathScope scope(path_, std::string_view(attr));
        out.set_attr(attr, convert(value));
      }
    }
    return Value(out);
  }

  Value object(const py::handle& o) {
    const py::tuple facts = mods_.convert.attr("object_facts")(o);
    auto node = std::make_shared<Object>(py::cast<std::string>(facts[0]), std::vector<std::pair<std::string, Value>>{},
                                         false);
    const bool frozen = py::cast<bool>(facts[1]);
    std::vector<std::pair<std::string, Value>> fields;
    Value placeholder(node);
    remember(o.ptr(), placeholder);
    for (auto field : py::reinterpret_borrow<py::list>(facts[2])) {
      const auto pair = py::reinterpret_borrow<py::tuple>(field);
      std::string name = py::cast<std::string>(pair[0]);
      PathScope scope(path_, std::string_view(name));
      fields.emplace_back(name, convert(pair[1]));
    }
    if (!frozen) {
      for (auto& [name, value] : fields) node->set_field(name, std::move(value));
      return placeholder;
    }
    // A frozen object is made whole at once (a self-reference through it cannot be kept).
    Value out(std::make_shared<Object>(py::cast<std::string>(facts[0]), std::move(fields), true));
    memo_[o.ptr()] = out;
    return out;
  }

  const Modules& mods_;
  py::object tensor_facts_;
  std::unordered_map<PyObject*, Value> memo_;
  std::vector<py::object> keep_alive_;
  std::unordered_map<std::int64_t, Storage> storages_;
  PathStack path_;
};

}  // namespace

Value from_torch(const py::handle& object) {
  FromTorch walk;
  return walk.convert(object);
}

}  // namespace stagekit::torch_bridge
