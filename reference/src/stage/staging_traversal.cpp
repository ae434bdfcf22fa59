#include "staging_traversal.h"

#include <fmt/format.h>

#include "stagekit/core/error.h"
#include "../core/tensor_elements.h"

namespace stagekit::detail {

Value StagingTraversal::run(const Value& root) { return stage_value(root); }

Value StagingTraversal::stage_value(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::none:
    case Value::Kind::boolean:
    case Value::Kind::integer:
    case Value::Kind::floating:
    case Value::Kind::string:
    case Value::Kind::bytes:
      return v;
    case Value::Kind::opaque:
      throw Unsupported(fmt::format("cannot stage a value of opaque type '{}': stagekit does not know how to copy it",
                                    v.as_opaque().type_name()),
                        path_.str());
    case Value::Kind::dtensor:
    case Value::Kind::sharded_tensor:
      throw Unsupported(fmt::format("staging {} values is not supported by this stager", value_kind_name(v.kind())),
                        path_.str());
    case Value::Kind::tensor:
    case Value::Kind::list:
    case Value::Kind::tuple:
    case Value::Kind::dict:
    case Value::Kind::object:
      break;
  }
  if (auto it = memo_.find(v.identity()); it != memo_.end()) return it->second;
  Value staged = stage_node(v);
  memo_.emplace(v.identity(), staged);
  return staged;
}

void StagingTraversal::enter(const void* node) {
  auto [it, inserted] = active_.emplace(node, path_.depth());
  if (!inserted) {
    throw InvalidArgument(fmt::format("cycle: this value contains itself (it is also reached at {}); "
                                      "state dicts must not be cyclic",
                                      path_.str(it->second)),
                          path_.str());
  }
}

Value StagingTraversal::stage_node(const Value& v) {
  const void* id = v.identity();
  enter(id);
  Value out;
  switch (v.kind()) {
    case Value::Kind::tensor:
      out = stage_tensor(v.as_tensor());
      break;
    case Value::Kind::list:
      out = Value::list(stage_items(v.as_list().items));
      break;
    case Value::Kind::tuple:
      out = Value::tuple(stage_items(v.as_tuple().items()));
      break;
    case Value::Kind::dict: {
      const Dict& source = v.as_dict();
      auto staged = std::make_shared<Dict>();
      staged->reserve(source.size());
      for (const auto& [key, value] : source.entries()) {
        PathScope scope(path_, key);
        staged->set(key, stage_value(value));
      }
      out = Value(std::move(staged));
      break;
    }
    case Value::Kind::object: {
      const Object& source = v.as_object();
      std::vector<std::pair<std::string, Value>> fields;
      fields.reserve(source.fields().size());
      for (const auto& [name, value] : source.fields()) {
        PathScope scope(path_, std::string_view(name));
        fields.emplace_back(name, stage_value(value));
      }
      out = Value(std::make_shared<Object>(source.type_name(), std::move(fields), source.frozen()));
      break;
    }
    default:
      STAGEKIT_INTERNAL_ASSERT(false);
  }
  leave(id);
  return out;
}

std::vector<Value> StagingTraversal::stage_items(const std::vector<Value>& items) {
  std::vector<Value> staged;
  staged.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    PathScope scope(path_, i);
    staged.push_back(stage_value(items[i]));
  }
  return staged;
}

void StagingTraversal::validate_tensor(const Tensor& t) const {
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  auto bad = [&](const std::string& why) {
    throw InvalidArgument(fmt::format("malformed tensor {}: {}", t.describe(), why), path_.str());
  };
  if (sizes.size() != strides.size()) bad("sizes and strides differ in length");
  if (t.storage_offset() < 0) bad("negative storage offset");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0 || strides[i] < 0) bad("negative size or stride");
  }
  const auto extent = addressed_extent(sizes, strides, t.storage_offset(), t.element_size());
  if (!extent) bad("its addressed range overflows");
  if (extent->numel == 0) return;
  if (!t.storage().defined()) bad(fmt::format("it has {} element(s) but no storage", extent->numel));
  if (t.storage().data() == nullptr) bad(fmt::format("it has {} element(s) but its storage has no data", extent->numel));
  if (extent->end_byte > t.storage().nbytes()) {
    bad(fmt::format("view out of bounds: it addresses bytes [{}, {}) but its storage holds {} bytes",
                    extent->begin_byte, extent->end_byte, t.storage().nbytes()));
  }
}

Value StagingTraversal::stage_tensor(const Tensor& t) {
  validate_tensor(t);
  if (!t.device().is_cpu() && !t.device().is_cuda()) {
    throw Unsupported("tensor on unsupported device " + t.device().str(), path_.str());
  }
  const Storage buffer = t.storage().defined() ? stage_storage(t.storage()) : allocate_buffer(0);
  Tensor out = Tensor::unchecked(buffer, t.dtype(), IntList(t.sizes().begin(), t.sizes().end()),
                                 IntList(t.strides().begin(), t.strides().end()), t.storage_offset());
  for (const auto& [name, value] : t.attrs()) {
    PathScope scope(path_, std::string_view(name));
    out.set_attr(name, stage_value(value));
  }
  return Value(std::move(out));
}

Storage StagingTraversal::allocate_buffer(std::size_t nbytes) {
  const bool pin = options_.pin_memory && nbytes > 0 && nbytes >= options_.pin_memory_min_bytes;
  return Storage::allocate_with(host_allocator(host_memory_kind(pin, options_.share_memory)), nbytes);
}

Storage StagingTraversal::stage_storage(const Storage& source) {
  if (auto it = storage_memo_.find(source.identity()); it != storage_memo_.end()) return it->second;
  const std::size_t nbytes = source.nbytes();
  Storage buffer = cache_.find(source);
  if (!buffer.defined() || buffer.nbytes() != nbytes) {
    try {
      buffer = allocate_buffer(nbytes);
    } catch (const Error& e) {
      e.with_path(path_.str())->rethrow();
    }
    new_entries_.emplace_back(source, buffer);
  }
  if (nbytes > 0) jobs_.push_back({source, buffer});
  storage_memo_.emplace(source.identity(), buffer);
  return buffer;
}

}  // namespace stagekit::detail
