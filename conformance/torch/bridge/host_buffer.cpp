#include "host_buffer.h"

#include <pybind11/embed.h>
#include <pybind11/stl.h>

#include "python_runtime.h"

namespace stagekit::torch_bridge {
namespace {

// Holds a stagekit storage for as long as Python holds the torch storage made over it.
struct HostBuffer {
  Storage storage;
  std::int64_t torch_key = 0;
  HostBuffer(const HostBuffer&) = delete;
  HostBuffer& operator=(const HostBuffer&) = delete;
  explicit HostBuffer(Storage s) : storage(std::move(s)) {}
  ~HostBuffer() {
    if (torch_key != 0) StorageMirror::instance().forget_key(torch_key);
  }
};

}  // namespace
}  // namespace stagekit::torch_bridge

PYBIND11_EMBEDDED_MODULE(_stagekit_bridge, m) {
  using stagekit::torch_bridge::HostBuffer;
  pybind11::class_<HostBuffer>(m, "HostBuffer", pybind11::buffer_protocol()).def_buffer([](HostBuffer& b) {
    return pybind11::buffer_info(b.storage.data(), 1, pybind11::format_descriptor<std::uint8_t>::format(), 1,
                                 {static_cast<pybind11::ssize_t>(b.storage.nbytes())}, {1}, false);
  });
}

namespace stagekit::torch_bridge {

py::object host_buffer_type() { return py::module_::import("_stagekit_bridge").attr("HostBuffer"); }

StorageMirror& StorageMirror::instance() {
  static auto* mirror = new StorageMirror;  // never destroyed: Python objects outlive static destruction
  return *mirror;
}

// Python is called below, and while it runs another thread may take the GIL and change these maps
// (a rehash moves every entry): no reference into a map is held across a Python call; each step looks
// the entry up afresh.
py::object StorageMirror::typed_base(const Storage& storage, DType dtype, const py::object& dtype_object) {
  const void* id = storage.identity();
  const auto current = [&]() -> Entry* {
    auto it = entries_.find(id);
    if (it == entries_.end()) return nullptr;
    if (it->second.data != storage.data() || it->second.nbytes != storage.nbytes()) {
      entries_.erase(it);  // resized since it was mirrored: mirror it afresh
      return nullptr;
    }
    return &it->second;
  };
  if (current() == nullptr) {
    Entry entry = mirror(storage);
    if (current() == nullptr) entries_.emplace(id, std::move(entry));  // unless another thread mirrored it meanwhile
  }
  Entry* entry = current();
  if (auto typed = entry->typed.find(dtype); typed != entry->typed.end()) return typed->second;
  const std::size_t item = element_size(dtype);
  const std::size_t usable = entry->nbytes - entry->nbytes % item;
  const py::object bytes = entry->bytes;  // a reference of this call's own
  py::object view = bytes[py::slice(0, static_cast<py::ssize_t>(usable), 1)].attr("view")(dtype_object);
  entry = current();
  if (entry == nullptr) return view;
  return entry->typed.emplace(dtype, std::move(view)).first->second;
}

StorageMirror::Entry StorageMirror::mirror(const Storage& storage) {
  const Modules& mods = modules();
  Entry entry;
  entry.storage = storage;
  entry.data = storage.data();
  entry.nbytes = storage.nbytes();
  auto holder = std::make_unique<HostBuffer>(storage);
  HostBuffer* raw = holder.get();
  py::object buffer = py::cast(std::move(holder));
  if (storage.nbytes() == 0) {
    entry.bytes =
        mods.torch.attr("empty")(0, py::arg("dtype") = mods.uint8, py::arg("device") = storage.device().str());
  } else if (storage.device().is_cuda()) {
    entry.bytes = mods.convert.attr("tensor_from_cuda_memory")(buffer, reinterpret_cast<std::uintptr_t>(storage.data()),
                                                               storage.nbytes(), storage.device().index);
  } else {
    entry.bytes = mods.frombuffer(buffer, py::arg("dtype") = mods.uint8);
  }
  const auto key =
      py::cast<std::int64_t>(mods.compat.attr("storage_key")(mods.compat.attr("untyped_storage")(entry.bytes)));
  if (storage.nbytes() > 0) {
    raw->torch_key = key;
    by_key_[key] = storage.weak();
  }
  return entry;
}

std::optional<Storage> StorageMirror::source_of(std::int64_t torch_key) const {
  auto it = by_key_.find(torch_key);
  if (it == by_key_.end()) return std::nullopt;
  Storage s = it->second.lock();
  if (!s.defined()) return std::nullopt;
  return s;
}

const py::object* StorageMirror::tensor_for(const Tensor& tensor, bool* had_attributes) const {
  auto it = tensors_.find(tensor.identity());
  if (it == tensors_.end()) return nullptr;
  const Storage& s = tensor.storage();
  if (it->second.data != s.data() || it->second.nbytes != s.nbytes()) return nullptr;
  *had_attributes = it->second.had_attributes;
  return &it->second.torch_tensor;
}

void StorageMirror::keep_tensor(const Tensor& tensor, py::object torch_tensor) {
  TensorEntry& e = tensors_[tensor.identity()];
  e.tensor = tensor;
  e.data = tensor.storage().data();
  e.nbytes = tensor.storage().nbytes();
  e.had_attributes = !tensor.attrs().empty();
  e.torch_tensor = std::move(torch_tensor);
}

void StorageMirror::prune(bool force) {
  const std::size_t size = entries_.size() + tensors_.size();
  if (!force && size < 2 * size_after_prune_ + 256) return;
  for (auto it = tensors_.begin(); it != tensors_.end();) {
    if (it->second.tensor.use_count() <= 1) {
      tensors_.erase(it++);
    } else {
      ++it;
    }
  }
  for (auto it = entries_.begin(); it != entries_.end();) {
    // Held by this entry and by the HostBuffer of its torch storage only: the case let it go.
    if (it->second.storage.use_count() <= 2) {
      entries_.erase(it++);
    } else {
      ++it;
    }
  }
  size_after_prune_ = entries_.size() + tensors_.size();
}

}  // namespace stagekit::torch_bridge
