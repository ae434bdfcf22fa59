#include "staging_traversal.h"

#include <fmt/format.h>

#include "stagekit/core/error.h"
#include "../core/tensor_elements.h"

namespace stagekit::detail {

StagingTraversal::StagingTraversal(const StagerOptions& options, const StorageCache& cache, TraversalSizes hint,
                                   bool keep_alive)
    : options_(options), cache_(cache), keep_alive_(keep_alive) {
  memo_.reserve(hint.nodes);
  storage_memo_.reserve(hint.storages);
  plan_.host.reserve(hint.storages);
  plan_.host_starts.reserve(hint.storages);
}

Value StagingTraversal::run(const Value& root) {
  const StorageCache::Reader reader = cache_.reader();
  cached_ = &reader;
  try {
    Value out = stage_value(root);
    cached_ = nullptr;
    return out;
  } catch (...) {
    cached_ = nullptr;
    throw;
  }
}

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
  // A node with a single handle appears nowhere else in the tree and closes no cycle: it needs no
  // memo entry (the common case, and the cheap one).
  if (v.use_count() == 1) return stage_node(v, /*unique=*/true);
  if (auto it = memo_.find(v.identity()); it != memo_.end()) return it->second;
  Value staged = stage_node(v, /*unique=*/false);
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

Value StagingTraversal::stage_node(const Value& v, bool unique) {
  // Only a node with several handles can be reached again from inside itself; a tensor without
  // attributes contains nothing that could.
  const bool track = !unique && !(v.is_tensor() && v.as_tensor().attrs().empty());
  const void* id = v.identity();
  if (track) enter(id);
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
      std::vector<Value> values;
      values.reserve(source.size());
      for (const auto& [key, value] : source.entries()) {
        PathScope scope(path_, key);
        values.push_back(stage_value(value));
      }
      out = Value(Dict::with_keys_of(source, std::move(values)));
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
  if (track) leave(id);
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
  Storage buffer = t.storage().defined() ? stage_storage(t.storage()) : allocate_buffer(0);
  Tensor out = t.on_storage(std::move(buffer));
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
  // A storage with one handle belongs to this tensor alone: no other tensor can share it.
  const bool shared = source.use_count() > 1;
  if (shared) {
    if (auto it = storage_memo_.find(source.identity()); it != storage_memo_.end()) return it->second;
  }
  const std::size_t nbytes = source.nbytes();
  const Storage* cached = cached_->find(source);
  Storage buffer = cached != nullptr ? *cached : Storage();
  if (!buffer.defined() || buffer.nbytes() != nbytes) {
    try {
      buffer = allocate_buffer(nbytes);
    } catch (const Error& e) {
      e.with_path(path_.str())->rethrow();
    }
    new_entries_.emplace_back(source, buffer);
  }
  plan_.add(source, buffer, keep_alive_);
  if (shared) storage_memo_.emplace(source.identity(), buffer);
  return buffer;
}

}  // namespace stagekit::detail
