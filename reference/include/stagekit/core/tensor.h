// stagekit/core/tensor.h — Tensor: a strided view of a Storage, with an identity and attributes.
//
// A Tensor is a handle (like at::Tensor or a Python tensor object): copying a Tensor shares the same
// tensor object, so identity (is_same) and attributes are shared; view operations (view, narrow,
// slice, transpose, expand, ...) create new tensor objects over the same Storage.
//
// Invariants (checked at construction, InvalidArgument otherwise):
//   * sizes and strides have the same length; sizes >= 0; strides >= 0; storage_offset >= 0;
//   * a tensor with at least one element is defined on a storage and every element it can address
//     lies inside that storage (offset and strides are counted in elements of dtype);
//   * a tensor with zero elements may sit on any storage, including a zero-byte one.
// Tensor::unchecked() skips those checks: it exists to build malformed inputs for error-path tests.
// Attributes are ordered (insertion order), named, and hold state-dict Values.
// A parameter (PyTorch's nn.Parameter, a tensor subclass) is a tensor object flagged as one, with its
// requires_grad; a plain tensor does not require grad unless set_requires_grad says so. View
// operations and on_storage() make plain tensors that do not require grad.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "stagekit/core/device.h"
#include "stagekit/core/dtype.h"
#include "stagekit/core/storage.h"

namespace stagekit {

class Value;
struct TensorImpl;

using IntList = std::vector<std::int64_t>;

class Tensor {
 public:
  Tensor() noexcept = default;  // undefined

  // ---- factories -------------------------------------------------------------------------------
  [[nodiscard]] static Tensor empty(IntList sizes, DType dtype, Device device = Device::cpu(),
                                    MemoryKind kind = MemoryKind::pageable);
  [[nodiscard]] static Tensor zeros(IntList sizes, DType dtype, Device device = Device::cpu());
  [[nodiscard]] static Tensor full(IntList sizes, double value, DType dtype, Device device = Device::cpu());
  [[nodiscard]] static Tensor scalar(double value, DType dtype, Device device = Device::cpu());  // 0-dim
  [[nodiscard]] static Tensor arange(std::int64_t n, DType dtype, Device device = Device::cpu());
  // Deterministic pseudo-random values: floats uniform in [-1, 1), integers in [-100, 100) (or
  // [0, 100) for unsigned), bool 0/1. In floating and complex tensors every 7th element from the
  // 4th (in element order) holds instead one of special_bit_patterns() in turn: a NaN with a
  // payload first, then -0.0, infinities, ... (so a tensor of 4+ elements holds a NaN, of 11+ a -0.0).
  [[nodiscard]] static Tensor random(IntList sizes, DType dtype, std::uint64_t seed, Device device = Device::cpu());
  // A tensor over an existing storage; validated (see the invariants above).
  [[nodiscard]] static Tensor from_storage(Storage storage, DType dtype, IntList sizes, IntList strides,
                                           std::int64_t storage_offset = 0);
  // Same, without validation. For building malformed inputs only.
  [[nodiscard]] static Tensor unchecked(Storage storage, DType dtype, IntList sizes, IntList strides,
                                        std::int64_t storage_offset);
  [[nodiscard]] static IntList contiguous_strides(std::span<const std::int64_t> sizes);
  // A new tensor object with this tensor's dtype, sizes, strides and offset over `storage` (no
  // attributes); InvalidArgument when the layout does not fit in `storage`.
  [[nodiscard]] Tensor on_storage(Storage storage) const;

  // ---- properties ----------------------------------------------------------------------------
  [[nodiscard]] bool defined() const noexcept { return impl_ != nullptr; }
  [[nodiscard]] const Storage& storage() const;
  [[nodiscard]] DType dtype() const;
  [[nodiscard]] Device device() const;
  [[nodiscard]] std::span<const std::int64_t> sizes() const;
  [[nodiscard]] std::span<const std::int64_t> strides() const;
  [[nodiscard]] std::int64_t storage_offset() const;
  [[nodiscard]] std::int64_t dim() const;
  [[nodiscard]] std::int64_t numel() const;
  [[nodiscard]] std::size_t element_size() const;
  [[nodiscard]] bool is_contiguous() const;
  // Bytes of storage this tensor can address: [storage_offset, last element] in bytes (0 if empty).
  [[nodiscard]] std::size_t addressed_bytes() const;
  // storage().data() advanced by storage_offset elements (nullptr for an undefined storage).
  [[nodiscard]] void* data_ptr() const;
  [[nodiscard]] bool is_same(const Tensor& other) const noexcept { return impl_ == other.impl_; }
  [[nodiscard]] const void* identity() const noexcept { return impl_.get(); }
  [[nodiscard]] long use_count() const noexcept { return impl_.use_count(); }
  // Hints the CPU to fetch the tensor object and, once it is cached, its storage object.
  void prefetch() const noexcept;
  [[nodiscard]] std::string describe() const;  // "float32[4, 4] strides (4, 1) offset 0 on cpu"

  // ---- views (share the storage) ---------------------------------------------------------------
  [[nodiscard]] Tensor view(IntList sizes) const;  // contiguous tensors only; one size may be -1
  [[nodiscard]] Tensor reshape(IntList sizes) const { return view(std::move(sizes)); }
  [[nodiscard]] Tensor narrow(std::int64_t dim, std::int64_t start, std::int64_t length) const;
  [[nodiscard]] Tensor slice(std::int64_t dim, std::int64_t start, std::int64_t stop, std::int64_t step = 1) const;
  [[nodiscard]] Tensor transpose(std::int64_t dim0, std::int64_t dim1) const;
  [[nodiscard]] Tensor expand(IntList sizes) const;  // size-1 dims broadcast with stride 0; -1 keeps
  [[nodiscard]] Tensor select(std::int64_t dim, std::int64_t index) const;
  [[nodiscard]] Tensor as_strided(IntList sizes, IntList strides, std::int64_t storage_offset) const;

  // ---- data -----------------------------------------------------------------------------------
  Tensor& fill_(double value);
  Tensor& random_(std::uint64_t seed);        // values as in Tensor::random
  Tensor& random_bytes_(std::uint64_t seed);  // arbitrary bit patterns, the special ones planted as above; bool 0/1
  Tensor& copy_(const Tensor& src);           // same sizes and dtype; any devices
  // A new contiguous tensor with the same values on `device` (host memory of `kind` for cpu).
  [[nodiscard]] Tensor to(Device device, MemoryKind kind = MemoryKind::pageable) const;
  [[nodiscard]] Tensor clone() const { return to(device()); }
  // The logical elements in row-major order, as bytes (copied to the host first if needed).
  [[nodiscard]] std::vector<std::byte> to_bytes() const;
  // One element as a double (real part for complex), by multi-index; `{}` for a 0-dim tensor.
  [[nodiscard]] double item(std::initializer_list<std::int64_t> index = {}) const;
  // Exact equality: same dtype, same sizes and identical bytes element by element (NaN payloads
  // included). Strides, offsets and devices may differ.
  [[nodiscard]] static bool equal(const Tensor& a, const Tensor& b);

  // ---- attributes (ordered, named state-dict values attached to this tensor object) -------------
  void set_attr(std::string name, Value value);
  [[nodiscard]] bool has_attr(std::string_view name) const;
  [[nodiscard]] Value attr(std::string_view name) const;  // InvalidArgument when missing
  [[nodiscard]] const std::vector<std::pair<std::string, Value>>& attrs() const;

  // ---- parameters (nn.Parameter) -----------------------------------------------------------------
  // A new tensor object of the parameter kind on this tensor's storage and layout (no attributes).
  [[nodiscard]] Tensor as_parameter(bool requires_grad = true) const;
  [[nodiscard]] bool is_parameter() const;
  [[nodiscard]] bool requires_grad() const;
  // Marks this tensor object as requiring grad (or not), like Python's requires_grad_().
  void set_requires_grad(bool requires_grad);

 private:
  explicit Tensor(std::shared_ptr<TensorImpl> impl) noexcept : impl_(std::move(impl)) {}
  [[nodiscard]] const TensorImpl& impl() const;
  std::shared_ptr<TensorImpl> impl_;
};

}  // namespace stagekit
