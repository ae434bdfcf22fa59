// conversion.h (internal to the torch bridge) — exact conversion between stagekit values and torch
// objects, both ways, without copying tensor memory.
//
// To torch: one torch storage per stagekit storage (StorageMirror), each tensor rebuilt on it with
// the same dtype, offset, sizes and strides; attributes set on the tensor object; dicts (order and
// str/int keys kept), lists, tuples, None, bool, int, float, str and bytes as themselves; objects as
// dataclass instances (one class per object type, field order and frozen kept); a leaf that cannot
// be copied as an OpaqueLeaf whose copying raises. A node reached twice becomes one Python object
// reached twice.
// Back: one stagekit storage per distinct torch storage (identity from torch's StorageImpl, never
// from addresses; a storage the bridge made from a stagekit storage comes back as that storage);
// the memory of any other torch storage is wrapped, not copied, and kept alive by a reference to it.
//
// Errors: a value that cannot be converted is an InvalidArgument naming its state-dict path; an
// input torch cannot represent here (a dtype this torch lacks, DTensor and ShardedTensor values) is
// InputNotRepresentable, which makes the case not_supported. Both directions need the GIL.
#pragma once

#include <pybind11/pybind11.h>

#include "stagekit/core/value.h"

namespace stagekit::torch_bridge {

namespace py = pybind11;

[[nodiscard]] py::object to_torch(const Value& value);
[[nodiscard]] Value from_torch(const py::handle& object);

}  // namespace stagekit::torch_bridge
