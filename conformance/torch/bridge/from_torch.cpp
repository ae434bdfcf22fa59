// torch objects -> stagekit value (see conversion.h).
#include <cstring>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>
#include <pybind11/stl.h>

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

// A tuple of ints (torch.Size is a tuple) as an IntList.
IntList int_list(const py::handle& tuple) {
  const Py_ssize_t n = PyTuple_GET_SIZE(tuple.ptr());
  IntList out(static_cast<std::size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i)
    out[static_cast<std::size_t>(i)] = PyLong_AsLongLong(PyTuple_GET_ITEM(tuple.ptr(), i));
  return out;
}

std::string utf8(const py::handle& s) {
  Py_ssize_t size = 0;
  const char* data = PyUnicode_AsUTF8AndSize(s.ptr(), &size);
  if (data == nullptr) throw py::error_already_set();
  return {data, static_cast<std::size_t>(size)};
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
    if (PyUnicode_Check(p)) return Value(utf8(o));
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
      if (!PyDict_CheckExact(p)) {
        node->set_type_name(py::cast<std::string>(mods_.convert.attr("type_path")(o)));
        node->set_default_factory(py::cast<std::string>(mods_.convert.attr("default_factory_path")(o)));
      }
      node->reserve(static_cast<std::size_t>(PyDict_Size(p)));
      Value out(node);
      remember(p, out);
      for (auto [k, item] : py::reinterpret_borrow<py::dict>(o)) {
        if (PyBool_Check(k.ptr()) || !(PyUnicode_Check(k.ptr()) || PyLong_Check(k.ptr()))) {
          throw InvalidArgument(
              fmt::format("a dict key of type {} (stagekit keys are str or int)", Py_TYPE(k.ptr())->tp_name),
              path_.str());
        }
        DictKey key = PyUnicode_Check(k.ptr()) ? DictKey(utf8(k)) : DictKey(py::cast<std::int64_t>(k));
        Value value;
        {
          PathScope scope(path_, key);
          value = convert(item);
        }
        node->set(std::move(key), std::move(value));
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
      if (!PyTuple_CheckExact(p)) {
        const py::object facts = mods_.convert.attr("namedtuple_facts")(o);
        if (!facts.is_none()) {
          return remember(p, Value(std::make_shared<Tuple>(std::move(items), py::cast<std::string>(facts[py::int_(0)]),
                                                           py::cast<std::vector<std::string>>(facts[py::int_(1)]))));
        }
      }
      return remember(p, Value::tuple(std::move(items)));
    }
    if (PyAnySet_Check(p)) {
      std::vector<Value> items;
      std::size_t i = 0;
      for (auto item : py::reinterpret_borrow<py::iterable>(o)) {
        PathScope scope(path_, i++);
        items.push_back(convert(item));
      }
      try {
        return remember(p, Value(std::make_shared<Set>(std::move(items), PyFrozenSet_Check(p) != 0)));
      } catch (const InvalidArgument& e) {
        throw InvalidArgument(e.detail(), path_.str());
      }
    }
    if (PyObject_IsInstance(p, mods_.opaque_type.ptr()) == 1) {
      return remember(p, Value::opaque(py::cast<std::string>(o.attr("type_name"))));
    }
    if (py::cast<bool>(mods_.is_dataclass(o)) && !PyType_Check(p)) return object(o);
    if (const py::object facts = mods_.convert.attr("slots_facts")(o); !facts.is_none()) return slots_object(o, facts);
    throw InvalidArgument(fmt::format("a Python {} cannot be converted to a stagekit value", Py_TYPE(p)->tp_name),
                          path_.str());
  }

 private:
  Value remember(PyObject* p, Value v) {
    memo_.emplace(p, v);
    // No reference is kept: the converted tree lives for the whole walk, so its ids stay unique.
    return v;
  }

  // The stagekit storage of a tensor's torch storage (f: what tensor_facts() said of the tensor).
  Storage storage_for(std::int64_t key, PyObject* f) {
    if (auto it = storages_.find(key); it != storages_.end()) return it->second;
    std::optional<Storage> found = StorageMirror::instance().source_of(key);
    if (!found) {
      PyObject* where = PyTuple_GET_ITEM(f, 9);  // None on the CPU, else (device type, index)
      Device device = Device::cpu();
      if (where != Py_None) {
        PyObject* device_type = PyTuple_GET_ITEM(where, 0);
        if (PyUnicode_CompareWithASCIIString(device_type, "cuda") != 0) {
          throw InvalidArgument(
              fmt::format("a tensor on device type '{}' (the torch route carries cpu and cuda tensors)",
                          utf8(device_type)),
              path_.str());
        }
        device = Device::cuda(static_cast<int>(PyLong_AsLong(PyTuple_GET_ITEM(where, 1))));
      }
      PyObject* ref = PyTuple_GET_ITEM(f, 1);  // the storage object keeps the memory alive
      Py_INCREF(ref);
      found = Storage::from_data_ptr(
          DataPtr(reinterpret_cast<void*>(PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(f, 7))),
                  static_cast<std::size_t>(PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(f, 8))), device,
                  device.is_cuda() ? MemoryKind::device : MemoryKind::pageable, ref, &release_python_reference));
    }
    return storages_.emplace(key, *found).first->second;
  }

  Value tensor(const py::handle& t) {
    const auto facts = py::reinterpret_steal<py::object>(PyObject_CallOneArg(tensor_facts_.ptr(), t.ptr()));
    if (!facts) throw py::error_already_set();
    PyObject* f = facts.ptr();
    const std::int64_t key = PyLong_AsLongLong(PyTuple_GET_ITEM(f, 0));
    const std::optional<DType> dtype = dtype_of(PyTuple_GET_ITEM(f, 2), t);
    const Storage storage = storage_for(key, f);
    Tensor out;
    try {
      out = Tensor::from_storage(storage, *dtype, int_list(PyTuple_GET_ITEM(f, 3)), int_list(PyTuple_GET_ITEM(f, 4)),
                                 PyLong_AsLongLong(PyTuple_GET_ITEM(f, 5)));
    } catch (const Error& e) {
      throw InvalidArgument(fmt::format("the returned tensor is not valid: {}", e.detail()), path_.str());
    }
    const long kind = PyLong_AsLong(PyTuple_GET_ITEM(f, 10));  // bit 1: a parameter, bit 0: requires grad
    if ((kind & 2) != 0) {
      out = out.as_parameter((kind & 1) != 0);
    } else if ((kind & 1) != 0) {
      out.set_requires_grad(true);
    }
    remember(t.ptr(), Value(out));  // before the attributes, which may reach this tensor again
    PyObject* attributes = PyTuple_GET_ITEM(f, 6);
    if (attributes != Py_None) {
      for (auto [name, value] : py::reinterpret_borrow<py::dict>(attributes)) {
        const std::string attr = py::cast<std::string>(name);
        PathScope scope(path_, std::string_view(attr));
        out.set_attr(attr, convert(value));
      }
    }
    return Value(out);
  }

  Value object(const py::handle& o) {
    const py::tuple facts = mods_.convert.attr("object_facts")(o);
    auto node =
        std::make_shared<Object>(py::cast<std::string>(facts[0]), std::vector<std::pair<std::string, Value>>{}, false);
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

  Value slots_object(const py::handle& o, const py::object& facts) {
    auto node = std::make_shared<Object>(py::cast<std::string>(facts[py::int_(0)]),
                                         std::vector<std::pair<std::string, Value>>{}, false, /*slots=*/true);
    Value out(node);
    remember(o.ptr(), out);
    for (auto slot : py::reinterpret_borrow<py::list>(facts[py::int_(1)])) {
      const auto pair = py::reinterpret_borrow<py::tuple>(slot);
      std::string name = py::cast<std::string>(pair[0]);
      PathScope scope(path_, std::string_view(name));
      node->set_field(name, convert(pair[1]));
    }
    return out;
  }

  // The stagekit dtype of a dtype name from tensor_facts() (None: a dtype stagekit lacks).
  std::optional<DType> dtype_of(PyObject* name, const py::handle& t) {
    if (auto it = dtypes_.find(name); it != dtypes_.end()) return it->second;
    std::optional<DType> dtype;
    if (name != Py_None) dtype = dtype_from_name(utf8(name));
    if (!dtype) {
      throw Unsupported(fmt::format("a tensor of dtype {} (stagekit has no such dtype)",
                                    py::cast<std::string>(py::str(t.attr("dtype")))),
                        path_.str());
    }
    dtypes_.emplace(name, *dtype);  // the names are the values of compat.DTYPE_NAMES: they live on
    return dtype;
  }

  const Modules& mods_;
  py::object tensor_facts_;
  absl::flat_hash_map<PyObject*, Value> memo_;
  absl::flat_hash_map<PyObject*, DType> dtypes_;  // by the (interned) dtype name objects
  absl::flat_hash_map<std::int64_t, Storage> storages_;
  PathStack path_;
};

}  // namespace

Value from_torch(const py::handle& object) {
  const GarbageCollectorPause pause;
  FromTorch walk;
  return walk.convert(object);
}

}  // namespace stagekit::torch_bridge
