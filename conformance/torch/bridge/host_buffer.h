// host_buffer.h (internal to the torch bridge) — the torch storages the bridge makes over stagekit
// storages, without copying, and the way back from such a torch storage to its stagekit storage.
//
// A stagekit host storage is exported to Python as a writable buffer (a HostBuffer holding the
// Storage); torch.frombuffer makes a uint8 tensor over it, whose storage keeps the HostBuffer — and
// so the stagekit storage — alive for as long as torch holds it. The StorageMirror keeps one torch
// storage per live stagekit storage (so that re-staging the same sources reaches the same torch
// storage, as a stager's cache expects) and remembers, while the torch storage lives, which stagekit
// storage it came from (so that identity survives the way back). It also keeps the torch tensor
// made for each live stagekit tensor, so that re-staging the same state dict converts only what
// changed.
//
// Invariants: one torch storage per stagekit storage at a time; an entry whose stagekit storage is
// held by nothing but the mirror is dropped by a later conversion (prune(), which walks the mirror
// only once it has doubled since the last walk, so that its cost stays proportional to what is
// converted, not to everything still alive); an entry whose
// storage was resized (its address or size changed) is replaced. All calls need the GIL; several
// threads may convert at once (the GIL changes hands at Python calls), so no reference into a map is
// held across a Python call.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

#include <absl/container/flat_hash_map.h>
#include <pybind11/pybind11.h>

#include "stagekit/core/dtype.h"
#include "stagekit/core/storage.h"
#include "stagekit/core/tensor.h"

namespace stagekit::torch_bridge {

namespace py = pybind11;

// The Python type of the buffer the bridge exports (registered in the embedded module).
[[nodiscard]] py::object host_buffer_type();

class StorageMirror {
 public:
  // The process's mirror.
  static StorageMirror& instance();

  // A tensor of `dtype` over the whole of `storage` (as many elements as fit), on the torch storage
  // that mirrors it; made on first use. `dtype_object` is the torch dtype.
  py::object typed_base(const Storage& storage, DType dtype, const py::object& dtype_object);
  // The stagekit storage a torch storage (by its key) was made from, while both live.
  [[nodiscard]] std::optional<Storage> source_of(std::int64_t torch_key) const;
  // The torch tensor made earlier for `tensor` (one torch tensor object per stagekit tensor, as a
  // Python program holds the same tensor objects from one checkpoint to the next), or null when
  // there is none or its storage changed since.
  // `*had_attributes` says whether attributes were set on it (they are set afresh each time).
  [[nodiscard]] const py::object* tensor_for(const Tensor& tensor, bool* had_attributes) const;
  void keep_tensor(const Tensor& tensor, py::object torch_tensor);
  // Drops tensors and storages nothing but the mirror holds any more (a torch storage goes when
  // torch holds it no longer), once the mirror has doubled since the last time (`force`: now).
  void prune(bool force = false);
  void forget_key(std::int64_t torch_key) { by_key_.erase(torch_key); }
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    Storage storage;
    const void* data = nullptr;
    std::size_t nbytes = 0;
    py::object bytes;  // the uint8 tensor over the whole storage
    std::map<DType, py::object> typed;
  };
  struct TensorEntry {
    Tensor tensor;
    const void* data = nullptr;
    std::size_t nbytes = 0;
    bool had_attributes = false;
    py::object torch_tensor;
  };
  // A new entry for `storage`: its torch storage, made over the same memory (calls Python).
  Entry mirror(const Storage& storage);

  absl::flat_hash_map<const void*, Entry> entries_;
  absl::flat_hash_map<const void*, TensorEntry> tensors_;
  absl::flat_hash_map<std::int64_t, WeakStorage> by_key_;
  std::size_t size_after_prune_ = 0;
};

}  // namespace stagekit::torch_bridge
