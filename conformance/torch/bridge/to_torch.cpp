// stagekit value -> torch objects (see conversion.h).
#include <span>

#include <absl/container/flat_hash_map.h>

#include <fmt/format.h>
#include <pybind11/stl.h>

#include "conversion.h"
#include "host_buffer.h"
#include "python_runtime.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/state_path.h"

namespace stagekit::torch_bridge {
namespace {

using conformance::InputNotRepresentable;

py::tuple int_tuple(std::span<const std::int64_t> values) {
  py::tuple out(values.size());
  for (std::size_t i = 0; i < values.size(); ++i) {
    PyTuple_SET_ITEM(out.ptr(), static_cast<Py_ssize_t>(i), PyLong_FromLongLong(values[i]));
  }
  return out;
}

class ToTorch {
 public:
  ToTorch() : mods_(modules()), dtypes_(mods_.compat.attr("DTYPES")) {}

  py::object convert(const Value& v) {
    const void* id = v.identity();
    if (id != nullptr) {
      if (auto it = memo_.find(id); it != memo_.end()) return it->second;
    }
    switch (v.kind()) {
      case Value::Kind::none: return py::none();
      case Value::Kind::boolean: return py::bool_(v.as_bool());
      case Value::Kind::integer: return py::int_(v.as_int());
      case Value::Kind::floating: return py::float_(v.as_double());
      case Value::Kind::string: return py::str(v.as_string());
      case Value::Kind::bytes: {
        const auto& b = v.as_bytes().data;
        return py::bytes(reinterpret_cast<const char*>(b.data()), b.size());
      }
      case Value::Kind::tensor: return tensor(v.as_tensor(), id);
      case Value::Kind::list: {
        py::list out;
        remember(id, out);
        std::size_t i = 0;
        for (const Value& item : v.as_list().items) {
          PathScope scope(path_, i++);
          out.append(convert(item));
        }
        return out;
      }
      case Value::Kind::tuple: {
        const Tuple& tuple = v.as_tuple();
        const auto& items = tuple.items();
        py::tuple out(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
          PathScope scope(path_, i);
          out[i] = convert(items[i]);
        }
        if (tuple.is_named()) {
          return remember(id, mods_.convert.attr("namedtuple_type")(tuple.type_name(), tuple.field_names())(*out));
        }
        return remember(id, out);
      }
      case Value::Kind::set: {
        const Set& set = v.as_set();
        py::list items;
        for (std::size_t i = 0; i < set.items().size(); ++i) {
          PathScope scope(path_, i);
          items.append(convert(set.items()[i]));
        }
        return remember(id, set.frozen() ? py::object(py::frozenset(items)) : py::object(py::set(items)));
      }
      case Value::Kind::dict: {
        const std::string& type_name = v.as_dict().type_name();
        py::object out = type_name.empty() ? py::dict() : new_dict(type_name, v.as_dict().default_factory());
        remember(id, out);
        for (const auto& [key, item] : v.as_dict().entries()) {
          PathScope scope(path_, key);
          py::object k = std::holds_alternative<std::string>(key) ? py::object(py::str(std::get<std::string>(key)))
                                                                  : py::object(py::int_(std::get<std::int64_t>(key)));
          out[k] = convert(item);
        }
        return out;
      }
      case Value::Kind::object:
        return v.as_object().slots() ? slots_object(v.as_object(), id) : object(v.as_object(), id);
      case Value::Kind::opaque: return remember(id, mods_.opaque_type(v.as_opaque().type_name(), path_.str()));
      case Value::Kind::dtensor:
      case Value::Kind::sharded_tensor:
        throw InputNotRepresentable(fmt::format("the torch route does not convert {} values yet (at {})",
                                                value_kind_name(v.kind()), path_.str()));
    }
    throw InvalidArgument("a value of an unknown kind", path_.str());
  }

 private:
  py::object new_dict(const std::string& type_name, const std::string& default_factory) {
    try {
      return mods_.convert.attr("new_dict")(type_name, default_factory);
    } catch (const py::error_already_set& e) {
      throw InputNotRepresentable(fmt::format("{} (at {})", e.what(), path_.str()));
    }
  }

  py::object remember(const void* id, py::object o) {
    if (id != nullptr) memo_.emplace(id, o);
    return o;
  }

  py::object dtype_object(DType dtype) {
    auto it = dtype_cache_.find(dtype);
    if (it != dtype_cache_.end()) return it->second;
    const std::string name(dtype_name(dtype));
    if (!dtypes_.contains(name.c_str())) {
      throw InputNotRepresentable(fmt::format("torch {} has no dtype {} (at {})",
                                              py::cast<std::string>(mods_.torch.attr("__version__")), name,
                                              path_.str()));
    }
    return dtype_cache_.emplace(dtype, dtypes_[name.c_str()]).first->second;
  }

  py::object tensor(const Tensor& t, const void* id) {
    const auto sizes = t.sizes();
    const auto strides = t.strides();
    if (sizes.size() != strides.size()) {
      throw InvalidArgument(fmt::format("the tensor has {} sizes but {} strides", sizes.size(), strides.size()),
                            path_.str());
    }
    std::int64_t numel = 1;
    std::int64_t last = 0;
    for (std::size_t d = 0; d < sizes.size(); ++d) {
      if (sizes[d] < 0 || strides[d] < 0)
        throw InvalidArgument("the tensor has a negative size or stride", path_.str());
      numel *= sizes[d];
      if (sizes[d] > 0) last += (sizes[d] - 1) * strides[d];
    }
    const Storage& storage = t.storage();
    if (numel > 0) {
      if (!storage.defined()) {
        throw InvalidArgument(fmt::format("the tensor has {} elements and no storage", numel), path_.str());
      }
      const std::uint64_t end = static_cast<std::uint64_t>(t.storage_offset() + last + 1) * element_size(t.dtype());
      if (end > storage.nbytes()) {
        throw InvalidArgument(fmt::format("the tensor ({}) reaches byte {} of a storage of {} bytes", t.describe(), end,
                                          storage.nbytes()),
                              path_.str());
      }
    }
    const py::object dtype = dtype_object(t.dtype());
    StorageMirror& mirror = StorageMirror::instance();
    if (storage.defined() && !t.is_parameter() && !t.requires_grad()) {
      bool had_attributes = false;
      if (const py::object* known = mirror.tensor_for(t, &had_attributes)) {
        py::object out = *known;
        remember(id, out);
        if (had_attributes || !t.attrs().empty()) {
          py::dict(out.attr("__dict__")).clear();
          set_attributes(t, out);
          mirror.keep_tensor(t, out);
        }
        return out;
      }
    }
    py::object out;
    if (!storage.defined()) {
      out = mods_.torch.attr("empty")(int_tuple(sizes), py::arg("dtype") = dtype);
    } else {
      const py::object base = StorageMirror::instance().typed_base(storage, t.dtype(), dtype);
      out = base.attr("as_strided")(int_tuple(sizes), int_tuple(strides), t.storage_offset());
    }
    if (t.is_parameter()) {
      out = mods_.convert.attr("as_parameter")(out, t.requires_grad());
    } else if (t.requires_grad()) {
      out.attr("requires_grad_")(true);
    } else if (storage.defined()) {
      mirror.keep_tensor(t, out);
    }
    remember(id, out);  // before the attributes, which may reach this tensor again
    set_attributes(t, out);
    return out;
  }

  void set_attributes(const Tensor& t, const py::object& out) {
    for (const auto& [name, value] : t.attrs()) {
      PathScope scope(path_, std::string_view(name));
      py::setattr(out, name.c_str(), convert(value));
    }
  }

  py::object object(const Object& o, const void* id) {
    std::vector<std::string> names;
    names.reserve(o.fields().size());
    for (const auto& field : o.fields()) names.push_back(field.first);
    const py::object cls = mods_.convert.attr("dataclass_type")(o.type_name(), names, o.frozen());
    py::object out = mods_.convert.attr("new_object")(cls);
    remember(id, out);
    py::dict fields = out.attr("__dict__");
    for (const auto& [name, value] : o.fields()) {
      PathScope scope(path_, std::string_view(name));
      fields[name.c_str()] = convert(value);
    }
    return out;
  }

  py::object slots_object(const Object& o, const void* id) {
    std::vector<std::string> names;
    names.reserve(o.fields().size());
    for (const auto& field : o.fields()) names.push_back(field.first);
    const py::object cls = mods_.convert.attr("slots_type")(o.type_name(), names);
    py::object out = mods_.convert.attr("new_object")(cls);
    remember(id, out);
    for (const auto& [name, value] : o.fields()) {
      PathScope scope(path_, std::string_view(name));
      py::setattr(out, name.c_str(), convert(value));
    }
    return out;
  }

  const Modules& mods_;
  py::dict dtypes_;
  absl::flat_hash_map<const void*, py::object> memo_;
  absl::flat_hash_map<DType, py::object> dtype_cache_;
  PathStack path_;
};

}  // namespace

py::object to_torch(const Value& value) {
  const GarbageCollectorPause pause;
  StorageMirror::instance().prune();
  ToTorch walk;
  return walk.convert(value);
}

}  // namespace stagekit::torch_bridge
