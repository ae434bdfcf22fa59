#include "stagekit/core/tensor.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <numeric>
#include <span>

#include <absl/container/inlined_vector.h>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/core/value.h"
#include "tensor_elements.h"

namespace stagekit {

// Sizes and strides live inline for up to 6 dimensions: a tensor object is one allocation.
using Dims = absl::InlinedVector<std::int64_t, 6>;

struct TensorImpl {
  Storage storage;
  DType dtype = DType::float32;
  Dims sizes;
  Dims strides;
  std::int64_t storage_offset = 0;
  std::vector<std::pair<std::string, Value>> attrs;
  bool parameter = false;
  bool requires_grad = false;
};

namespace {

std::string layout_text(DType dtype, std::span<const std::int64_t> sizes, std::span<const std::int64_t> strides,
                        std::int64_t offset) {
  return fmt::format("{}[{}] strides ({}) offset {}", dtype_name(dtype), fmt::join(sizes, ", "),
                     fmt::join(strides, ", "), offset);
}

void validate_layout(const Storage& storage, DType dtype, std::span<const std::int64_t> sizes,
                     std::span<const std::int64_t> strides, std::int64_t offset) {
  auto bad = [&](const std::string& why) {
    throw InvalidArgument(fmt::format("invalid tensor layout {}: {}", layout_text(dtype, sizes, strides, offset), why));
  };
  if (sizes.size() != strides.size()) bad("sizes and strides differ in length");
  if (offset < 0) bad("negative storage offset");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0) bad("negative size");
    if (strides[i] < 0) bad("negative stride");
  }
  const auto extent = detail::addressed_extent(sizes, strides, offset, element_size(dtype));
  if (!extent.has_value()) bad("the addressed range overflows");
  if (extent->numel == 0) return;
  if (!storage.defined()) bad(fmt::format("{} element(s) but no storage", extent->numel));
  if (extent->end_byte > storage.nbytes()) {
    bad(fmt::format("it addresses bytes [{}, {}) but its storage holds {} bytes", extent->begin_byte, extent->end_byte,
                    storage.nbytes()));
  }
}

std::int64_t wrap_dim(std::int64_t dim, std::int64_t ndim) {
  const std::int64_t wrapped = dim < 0 ? dim + ndim : dim;
  if (wrapped < 0 || wrapped >= ndim) {
    throw InvalidArgument(fmt::format("dimension {} out of range for a {}-dimensional tensor", dim, ndim));
  }
  return wrapped;
}

std::uint64_t splitmix64(std::uint64_t& state) noexcept {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

double random_value(DType dtype, std::uint64_t& state) {
  const std::uint64_t r = splitmix64(state);
  switch (dtype_category(dtype)) {
    case DTypeCategory::boolean: return static_cast<double>(r & 1U);
    case DTypeCategory::unsigned_integer: return static_cast<double>(r % 100U);
    case DTypeCategory::signed_integer: return static_cast<double>(static_cast<std::int64_t>(r % 200U) - 100);
    case DTypeCategory::floating:
    case DTypeCategory::complex: return static_cast<double>(r >> 11) * 0x1.0p-52 - 1.0;  // [-1, 1)
  }
  return 0.0;
}

// Gives every 7th element from the 4th of a floating or complex tensor the next of its dtype's
// special bit patterns (NaN payloads, -0.0, infinities, ...; the imaginary part gets the one after),
// so that a copy that is exact only up to value equality shows itself. Call once per element, in order.
class SpecialPatternPlanter {
 public:
  explicit SpecialPatternPlanter(DType dtype)
      : patterns_(special_bit_patterns(dtype)),
        complex_(dtype_category(dtype) == DTypeCategory::complex),
        component_bytes_(complex_ ? element_size(dtype) / 2 : element_size(dtype)) {}

  void operator()(std::byte* element) {
    const std::uint64_t i = index_++;
    if (patterns_.empty() || i % 7 != 3) return;
    const std::size_t k = static_cast<std::size_t>(i / 7) % patterns_.size();
    std::memcpy(element, &patterns_[k], component_bytes_);
    if (complex_) std::memcpy(element + component_bytes_, &patterns_[(k + 1) % patterns_.size()], component_bytes_);
  }

 private:
  static_assert(std::endian::native == std::endian::little, "the patterns are written as little-endian bits");
  std::span<const std::uint64_t> patterns_;
  bool complex_;
  std::size_t component_bytes_;
  std::uint64_t index_ = 0;
};

// A tensor on the meta device has no elements to read or write.
void require_data(const Tensor& t) {
  if (t.device().is_meta()) throw InvalidArgument(t.describe() + " is on the meta device: it has no data");
}

// Runs `fn` on a host tensor holding this tensor's addressed bytes (the tensor itself for a CPU
// tensor), then writes the bytes back to the device when `write_back` is set.
template <class Fn>
void with_host_tensor(const Tensor& t, bool write_back, Fn&& fn) {
  require_data(t);
  if (t.device().is_cpu()) {
    fn(t);
    return;
  }
  const auto extent = detail::addressed_extent(t.sizes(), t.strides(), t.storage_offset(), t.element_size());
  if (extent->numel == 0) {
    fn(t);
    return;
  }
  const std::size_t n = extent->end_byte - extent->begin_byte;
  const std::size_t item = t.element_size();
  Storage host = Storage::allocate(n);
  auto* device_begin = static_cast<std::byte*>(t.storage().data()) + extent->begin_byte;
  cuda::memcpy_sync(host.data(), device_begin, n);
  const auto local_offset = t.storage_offset() - static_cast<std::int64_t>(extent->begin_byte / item);
  Tensor view = Tensor::from_storage(host, t.dtype(), IntList(t.sizes().begin(), t.sizes().end()),
                                     IntList(t.strides().begin(), t.strides().end()), local_offset);
  fn(view);
  if (write_back) cuda::memcpy_sync(device_begin, host.data(), n);
}

}  // namespace

// ---- factories -----------------------------------------------------------------------------------

IntList Tensor::contiguous_strides(std::span<const std::int64_t> sizes) {
  IntList strides(sizes.size(), 1);
  std::int64_t running = 1;
  for (std::size_t i = sizes.size(); i-- > 0;) {
    strides[i] = running;
    running *= std::max<std::int64_t>(sizes[i], 1);
  }
  return strides;
}

Tensor Tensor::empty(IntList sizes, DType dtype, Device device, MemoryKind kind) {
  std::int64_t numel = 1;
  for (auto s : sizes) {
    check_argument(s >= 0, "Tensor::empty: negative size");
    numel *= s;
  }
  IntList strides = contiguous_strides(sizes);
  Storage storage = Storage::allocate(static_cast<std::size_t>(numel) * stagekit::element_size(dtype), device,
                                      device.is_cpu() ? kind : MemoryKind::device);
  return from_storage(std::move(storage), dtype, std::move(sizes), std::move(strides), 0);
}

Tensor Tensor::zeros(IntList sizes, DType dtype, Device device) { return full(std::move(sizes), 0.0, dtype, device); }

Tensor Tensor::full(IntList sizes, double value, DType dtype, Device device) {
  Tensor t = empty(std::move(sizes), dtype, device);
  t.fill_(value);
  return t;
}

Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(std::int64_t n, DType dtype, Device device) {
  Tensor host = empty({n}, dtype);
  auto* p = static_cast<std::byte*>(host.data_ptr());
  const std::size_t item = stagekit::element_size(dtype);
  for (std::int64_t i = 0; i < n; ++i) {
    encode_element(dtype, static_cast<double>(i), {p + static_cast<std::size_t>(i) * item, item});
  }
  return device.is_cpu() ? host : host.to(device);
}

Tensor Tensor::random(IntList sizes, DType dtype, std::uint64_t seed, Device device) {
  Tensor t = empty(std::move(sizes), dtype, device);
  t.random_(seed);
  return t;
}

Tensor Tensor::from_storage(Storage storage, DType dtype, IntList sizes, IntList strides, std::int64_t storage_offset) {
  validate_layout(storage, dtype, sizes, strides, storage_offset);
  return unchecked(std::move(storage), dtype, std::move(sizes), std::move(strides), storage_offset);
}

Tensor Tensor::unchecked(Storage storage, DType dtype, IntList sizes, IntList strides, std::int64_t storage_offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->dtype = dtype;
  impl->sizes.assign(sizes.begin(), sizes.end());
  impl->strides.assign(strides.begin(), strides.end());
  impl->storage_offset = storage_offset;
  return Tensor(std::move(impl));
}

Tensor Tensor::on_storage(Storage storage) const {
  const TensorImpl& from = impl();
  validate_layout(storage, from.dtype, from.sizes, from.strides, from.storage_offset);
  auto out = std::make_shared<TensorImpl>();
  out->storage = std::move(storage);
  out->dtype = from.dtype;
  out->sizes = from.sizes;
  out->strides = from.strides;
  out->storage_offset = from.storage_offset;
  return Tensor(std::move(out));
}

void Tensor::prefetch() const noexcept {
  const TensorImpl* impl = impl_.get();
  if (impl == nullptr) return;
  __builtin_prefetch(impl);
  // Reading the storage handle waits for the tensor object; callers prefetch far enough ahead.
  if (const void* storage = impl->storage.identity()) __builtin_prefetch(storage);
}

// ---- properties ------------------------------------------------------------------------------------

const TensorImpl& Tensor::impl() const {
  if (!impl_) throw InvalidArgument("operation on an undefined tensor");
  return *impl_;
}
const Storage& Tensor::storage() const { return impl().storage; }
DType Tensor::dtype() const { return impl().dtype; }
Device Tensor::device() const { return impl().storage.device(); }
std::span<const std::int64_t> Tensor::sizes() const { return impl().sizes; }
std::span<const std::int64_t> Tensor::strides() const { return impl().strides; }
std::int64_t Tensor::storage_offset() const { return impl().storage_offset; }
std::int64_t Tensor::dim() const { return static_cast<std::int64_t>(impl().sizes.size()); }
std::int64_t Tensor::numel() const {
  const auto& s = impl().sizes;
  return std::accumulate(s.begin(), s.end(), std::int64_t{1}, std::multiplies<>());
}
std::size_t Tensor::element_size() const { return stagekit::element_size(dtype()); }

bool Tensor::is_contiguous() const {
  const auto& i = impl();
  std::int64_t expected = 1;
  for (std::size_t d = i.sizes.size(); d-- > 0;) {
    if (i.sizes[d] == 1) continue;
    if (i.sizes[d] == 0) return true;
    if (i.strides[d] != expected) return false;
    expected *= i.sizes[d];
  }
  return true;
}

std::size_t Tensor::addressed_bytes() const {
  const auto e = detail::addressed_extent(sizes(), strides(), storage_offset(), element_size());
  return e && e->numel > 0 ? e->end_byte - e->begin_byte : 0;
}

void* Tensor::data_ptr() const {
  const auto& i = impl();
  if (i.storage.data() == nullptr) return nullptr;
  return static_cast<std::byte*>(i.storage.data()) + static_cast<std::size_t>(i.storage_offset) * element_size();
}

std::string Tensor::describe() const {
  if (!impl_) return "undefined tensor";
  return layout_text(dtype(), sizes(), strides(), storage_offset()) + " on " + device().str();
}

// ---- views ---------------------------------------------------------------------------------------

Tensor Tensor::as_strided(IntList sizes, IntList strides, std::int64_t storage_offset) const {
  Tensor out = from_storage(storage(), dtype(), std::move(sizes), std::move(strides), storage_offset);
  return out;
}

Tensor Tensor::view(IntList new_sizes) const {
  if (!is_contiguous()) throw InvalidArgument("view: tensor is not contiguous (" + describe() + "); use a copy");
  std::int64_t known = 1;
  std::int64_t infer_at = -1;
  for (std::size_t i = 0; i < new_sizes.size(); ++i) {
    if (new_sizes[i] == -1) {
      check_argument(infer_at < 0, "view: only one dimension can be -1");
      infer_at = static_cast<std::int64_t>(i);
    } else {
      check_argument(new_sizes[i] >= 0, "view: negative size");
      known *= new_sizes[i];
    }
  }
  if (infer_at >= 0) {
    check_argument(known != 0 && numel() % known == 0, "view: cannot infer the -1 dimension");
    new_sizes[static_cast<std::size_t>(infer_at)] = numel() / known;
    known = numel();
  }
  if (known != numel()) {
    throw InvalidArgument(
        fmt::format("view: shape [{}] is invalid for {} elements", fmt::join(new_sizes, ", "), numel()));
  }
  IntList new_strides = contiguous_strides(new_sizes);
  return as_strided(std::move(new_sizes), std::move(new_strides), storage_offset());
}

Tensor Tensor::narrow(std::int64_t dim_, std::int64_t start, std::int64_t length) const {
  const auto d = static_cast<std::size_t>(wrap_dim(dim_, dim()));
  IntList s(sizes().begin(), sizes().end());
  if (start < 0 || length < 0 || start + length > s[d]) {
    throw InvalidArgument(
        fmt::format("narrow: start {} + length {} exceeds size {} of dim {}", start, length, s[d], d));
  }
  s[d] = length;
  return as_strided(std::move(s), IntList(strides().begin(), strides().end()), storage_offset() + start * strides()[d]);
}

Tensor Tensor::slice(std::int64_t dim_, std::int64_t start, std::int64_t stop, std::int64_t step) const {
  const auto d = static_cast<std::size_t>(wrap_dim(dim_, dim()));
  IntList s(sizes().begin(), sizes().end());
  IntList st(strides().begin(), strides().end());
  check_argument(step >= 1, "slice: step must be positive");
  start = std::clamp<std::int64_t>(start < 0 ? start + s[d] : start, 0, s[d]);
  stop = std::clamp<std::int64_t>(stop < 0 ? stop + s[d] : stop, start, s[d]);
  const std::int64_t offset = storage_offset() + start * st[d];
  s[d] = (stop - start + step - 1) / step;
  st[d] *= step;
  return as_strided(std::move(s), std::move(st), offset);
}

Tensor Tensor::transpose(std::int64_t dim0, std::int64_t dim1) const {
  const auto a = static_cast<std::size_t>(wrap_dim(dim0, dim()));
  const auto b = static_cast<std::size_t>(wrap_dim(dim1, dim()));
  IntList s(sizes().begin(), sizes().end());
  IntList st(strides().begin(), strides().end());
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  return as_strided(std::move(s), std::move(st), storage_offset());
}

Tensor Tensor::expand(IntList new_sizes) const {
  const auto old_dim = static_cast<std::size_t>(dim());
  check_argument(new_sizes.size() >= old_dim, "expand: fewer dimensions than the tensor has");
  const std::size_t lead = new_sizes.size() - old_dim;
  IntList st(new_sizes.size(), 0);
  for (std::size_t i = 0; i < new_sizes.size(); ++i) {
    if (i < lead) {
      check_argument(new_sizes[i] >= 0, "expand: -1 is not allowed for a new leading dimension");
      continue;
    }
    const std::int64_t old_size = sizes()[i - lead];
    if (new_sizes[i] == -1 || new_sizes[i] == old_size) {
      new_sizes[i] = old_size;
      st[i] = strides()[i - lead];
    } else if (old_size == 1) {
      st[i] = 0;
    } else {
      throw InvalidArgument(
          fmt::format("expand: size {} of dim {} cannot become {}", old_size, i - lead, new_sizes[i]));
    }
  }
  return as_strided(std::move(new_sizes), std::move(st), storage_offset());
}

Tensor Tensor::select(std::int64_t dim_, std::int64_t index) const {
  const auto d = static_cast<std::size_t>(wrap_dim(dim_, dim()));
  IntList s(sizes().begin(), sizes().end());
  IntList st(strides().begin(), strides().end());
  if (index < 0) index += s[d];
  check_argument(index >= 0 && index < s[d], "select: index out of range");
  const std::int64_t offset = storage_offset() + index * st[d];
  s.erase(s.begin() + static_cast<std::ptrdiff_t>(d));
  st.erase(st.begin() + static_cast<std::ptrdiff_t>(d));
  return as_strided(std::move(s), std::move(st), offset);
}

// ---- data --------------------------------------------------------------------------------------------

Tensor& Tensor::fill_(double value) {
  if (device().is_meta()) return *this;  // as PyTorch's: nothing to fill
  std::byte encoded[16];
  const std::size_t item = element_size();
  encode_element(dtype(), value, {encoded, item});
  with_host_tensor(*this, true, [&](const Tensor& host) {
    detail::for_each_element(host, [&](std::byte* p) { std::memcpy(p, encoded, item); });
  });
  return *this;
}

Tensor& Tensor::random_(std::uint64_t seed) {
  if (device().is_meta()) return *this;
  std::uint64_t state = seed;
  const std::size_t item = element_size();
  const DType dt = dtype();
  with_host_tensor(*this, true, [&](const Tensor& host) {
    SpecialPatternPlanter plant(dt);
    detail::for_each_element(host, [&](std::byte* p) {
      encode_element(dt, random_value(dt, state), {p, item});
      plant(p);
    });
  });
  return *this;
}

Tensor& Tensor::random_bytes_(std::uint64_t seed) {
  if (device().is_meta()) return *this;
  std::uint64_t state = seed;
  const std::size_t item = element_size();
  const bool boolean = dtype() == DType::bool_;
  with_host_tensor(*this, true, [&](const Tensor& host) {
    SpecialPatternPlanter plant(dtype());
    detail::for_each_element(host, [&](std::byte* p) {
      for (std::size_t b = 0; b < item; b += 8) {
        const std::uint64_t r = splitmix64(state);
        std::memcpy(p + b, &r, std::min<std::size_t>(8, item - b));
      }
      if (boolean) *p = static_cast<std::byte>(static_cast<unsigned>(*p) & 1U);
      plant(p);
    });
  });
  return *this;
}

Tensor& Tensor::copy_(const Tensor& src) {
  if (src.dtype() != dtype() || !std::equal(src.sizes().begin(), src.sizes().end(), sizes().begin(), sizes().end())) {
    throw InvalidArgument("copy_: " + src.describe() + " cannot be copied into " + describe());
  }
  if (numel() == 0) return *this;
  // Contiguous host tensors: one memcpy (the element walk below handles every other layout).
  if (device().is_cpu() && src.device().is_cpu() && is_contiguous() && src.is_contiguous()) {
    std::memmove(data_ptr(), src.data_ptr(), static_cast<std::size_t>(numel()) * element_size());
    return *this;
  }
  const std::vector<std::byte> bytes = src.to_bytes();
  const std::size_t item = element_size();
  with_host_tensor(*this, true, [&](const Tensor& host) {
    std::size_t at = 0;
    detail::for_each_element(host, [&](std::byte* p) {
      std::memcpy(p, bytes.data() + at, item);
      at += item;
    });
  });
  return *this;
}

Tensor Tensor::to(Device device, MemoryKind kind) const {
  Tensor out = empty(IntList(sizes().begin(), sizes().end()), dtype(), device, kind);
  if (device.is_meta()) return out;  // sizes and dtype only
  const std::vector<std::byte> bytes = to_bytes();
  if (bytes.empty()) return out;
  if (device.is_cpu()) {
    std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  } else {
    cuda::memcpy_sync(out.data_ptr(), bytes.data(), bytes.size());
  }
  return out;
}

std::vector<std::byte> Tensor::to_bytes() const {
  std::vector<std::byte> out(static_cast<std::size_t>(numel()) * element_size());
  if (out.empty()) return out;
  if (device().is_cpu() && is_contiguous()) {
    std::memcpy(out.data(), data_ptr(), out.size());
    return out;
  }
  const std::size_t item = element_size();
  with_host_tensor(*this, false, [&](const Tensor& host) {
    std::size_t at = 0;
    detail::for_each_element(host, [&](std::byte* p) {
      std::memcpy(out.data() + at, p, item);
      at += item;
    });
  });
  return out;
}

double Tensor::item(std::initializer_list<std::int64_t> index) const {
  if (static_cast<std::int64_t>(index.size()) != dim()) {
    throw InvalidArgument(fmt::format("item: {} indices for a {}-dimensional tensor", index.size(), dim()));
  }
  std::int64_t offset = storage_offset();
  std::size_t d = 0;
  for (std::int64_t i : index) {
    check_argument(i >= 0 && i < sizes()[d], "item: index out of range");
    offset += i * strides()[d];
    ++d;
  }
  require_data(*this);
  const std::size_t item = element_size();
  std::byte buf[16];
  const auto* src = static_cast<const std::byte*>(storage().data()) + static_cast<std::size_t>(offset) * item;
  if (device().is_cpu()) {
    std::memcpy(buf, src, item);
  } else {
    cuda::memcpy_sync(buf, src, item);
  }
  return decode_element(dtype(), {buf, item});
}

bool Tensor::equal(const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype()) return false;
  if (!std::equal(a.sizes().begin(), a.sizes().end(), b.sizes().begin(), b.sizes().end())) return false;
  return a.to_bytes() == b.to_bytes();
}

// ---- attributes ------------------------------------------------------------------------------------

void Tensor::set_attr(std::string name, Value value) {
  if (!impl_) throw InvalidArgument("set_attr on an undefined tensor");
  auto& attrs = impl_->attrs;
  for (auto& [n, v] : attrs) {
    if (n == name) {
      v = std::move(value);
      return;
    }
  }
  attrs.emplace_back(std::move(name), std::move(value));
}

bool Tensor::has_attr(std::string_view name) const {
  const auto& attrs = impl().attrs;
  return std::any_of(attrs.begin(), attrs.end(), [&](const auto& a) { return a.first == name; });
}

Value Tensor::attr(std::string_view name) const {
  for (const auto& [n, v] : impl().attrs) {
    if (n == name) return v;
  }
  throw InvalidArgument(fmt::format("tensor has no attribute '{}'", name));
}

const std::vector<std::pair<std::string, Value>>& Tensor::attrs() const { return impl().attrs; }

Tensor Tensor::as_parameter(bool requires_grad) const {
  Tensor out = on_storage(storage());
  out.impl_->parameter = true;
  out.impl_->requires_grad = requires_grad;
  return out;
}

bool Tensor::is_parameter() const { return impl().parameter; }
bool Tensor::requires_grad() const { return impl().requires_grad; }
void Tensor::set_requires_grad(bool requires_grad) {
  (void)impl();  // throws on an undefined tensor
  impl_->requires_grad = requires_grad;
}

}  // namespace stagekit
