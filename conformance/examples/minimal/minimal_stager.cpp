// minimal_stager.cpp — the steps of the minimal stager (see minimal_stager.h for the contract).
#include "minimal_stager.h"

#include <algorithm>

#include "stagekit/core/allocator.h"
#include "stagekit/core/error.h"

namespace stagekit_example {

Value MinimalStager::stage(const Value& state_dict) {
  // A cache entry whose source storage died is stale: a new storage may get the same address (and
  // the old result must never be overwritten), so it is dropped before looking anything up.
  std::erase_if(cache_, [](const auto& entry) { return entry.second.source.expired(); });
  state_ = {};
  try {
    Value staged = stage_value(state_dict);
    state_ = {};
    return staged;
  } catch (...) {
    // All or nothing: forget (and so release) the buffers this call allocated.
    for (const void* key : state_.added) cache_.erase(key);
    state_ = {};
    throw;
  }
}

Value MinimalStager::stage_value(const Value& source) {
  const void* id = source.identity();
  if (id == nullptr) return source;  // none, bool, int, float, string, bytes: copied by value
  if (auto it = state_.memo.find(id); it != state_.memo.end()) return it->second;
  if (!state_.in_progress.insert(id).second) {
    throw InvalidArgument("the state dict contains a cycle: this node contains itself", path());
  }
  Value staged = stage_node(source);
  state_.in_progress.erase(id);
  state_.memo.emplace(id, staged);
  return staged;
}

Value MinimalStager::stage_node(const Value& source) {
  switch (source.kind()) {
    case Value::Kind::tensor: return stage_tensor(source.as_tensor());
    case Value::Kind::list:
    case Value::Kind::tuple: {
      const bool is_list = source.kind() == Value::Kind::list;
      const std::vector<Value>& items = is_list ? source.as_list().items : source.as_tuple().items();
      std::vector<Value> staged;
      staged.reserve(items.size());
      for (std::size_t i = 0; i < items.size(); ++i) {
        PathScope scope(state_.path, i);
        staged.push_back(stage_value(items[i]));
      }
      return is_list ? Value::list(std::move(staged)) : rebuild_tuple(source.as_tuple(), std::move(staged));
    }
    case Value::Kind::set:  // plain values only: a new set (or frozenset) of the same items
      return Value(std::make_shared<Set>(source.as_set().items(), source.as_set().frozen()));
    case Value::Kind::dict: {
      const Dict& dict = source.as_dict();
      std::vector<Value> staged;
      staged.reserve(dict.size());
      for (const auto& [key, item] : dict.entries()) {
        PathScope scope(state_.path, key);
        staged.push_back(stage_value(item));
      }
      return rebuild_dict(dict, std::move(staged));
    }
    case Value::Kind::object: {
      const Object& object = source.as_object();
      Fields staged;
      for (const auto& [name, item] : object.fields()) {
        PathScope scope(state_.path, std::string_view(name));
        staged.emplace_back(name, stage_value(item));
      }
      return rebuild_object(object, std::move(staged));
    }
    case Value::Kind::opaque:
      throw Unsupported("cannot stage a leaf of type " + source.as_opaque().type_name(), path());
    default:
      throw Unsupported(std::string("this stager does not stage ") + std::string(value_kind_name(source.kind())),
                        path());
  }
}

Value MinimalStager::stage_tensor(const Tensor& source) {
  check_tensor(source);
  if (!source.device().is_cpu()) {
    throw Unsupported("this stager stages CPU tensors only, not tensors on " + source.device().str(), path());
  }
  Storage staged_storage;
  if (source.storage().defined()) staged_storage = stage_storage(source);
  Tensor staged = rebuild_view(source, staged_storage);
  copy_attributes(source, staged);
  return staged;
}

void MinimalStager::check_tensor(const Tensor& source) {
  const auto sizes = source.sizes();
  const auto strides = source.strides();
  if (sizes.size() != strides.size()) {
    throw InvalidArgument("malformed tensor: " + std::to_string(sizes.size()) + " sizes but " +
                              std::to_string(strides.size()) + " strides",
                          path());
  }
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] < 0 || strides[d] < 0) throw InvalidArgument("malformed tensor: negative size or stride", path());
  }
  if (source.storage_offset() < 0) throw InvalidArgument("malformed tensor: negative storage offset", path());
  if (source.numel() == 0) return;
  if (!source.storage().defined()) throw InvalidArgument("a tensor with elements has no storage", path());
  if (source.addressed_bytes() > source.storage().nbytes()) {
    throw InvalidArgument("the view addresses " + std::to_string(source.addressed_bytes()) +
                              " bytes but its storage holds " + std::to_string(source.storage().nbytes()),
                          path());
  }
}

Storage MinimalStager::stage_storage(const Tensor& source) {
  const void* key = cache_key(source);
  if (auto it = state_.storages.find(key); it != state_.storages.end()) return it->second;  // a view of it
  const Storage& src = source.storage();
  Storage staged = find_cached(key, src);
  if (!staged.defined()) {
    try {
      staged = allocate_buffer(src.nbytes());
    } catch (const Error& e) {
      e.with_path(path())->rethrow();  // e.g. ResourceExhausted from the allocator, now naming the entry
    }
    cache_[key] = CacheEntry{src.weak(), staged};
    state_.added.push_back(key);
  }
  copy_storage(staged, src);
  state_.storages.emplace(key, staged);
  return staged;
}

Storage MinimalStager::find_cached(const void* key, const Storage& source) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return {};
  const CacheEntry& entry = it->second;
  if (!entry.source.lock().is_alias_of(source) || entry.staged.nbytes() != source.nbytes()) return {};
  return entry.staged;
}

Storage MinimalStager::allocate_buffer(std::size_t nbytes) {
  // Like upstream: storages smaller than pin_memory_min_bytes are not pinned, and nothing of 0 bytes is.
  const bool pin = config_.pin_memory && nbytes > 0 && nbytes >= config_.pin_memory_min_bytes;
  return Storage::allocate_with(host_allocator(host_memory_kind(pin, config_.share_memory)), nbytes);
}

void MinimalStager::copy_storage(const Storage& staged, const Storage& source) {
  if (source.nbytes() > 0) copy_bytes(staged, 0, source, 0, source.nbytes());
}

Tensor MinimalStager::rebuild_view(const Tensor& source, const Storage& staged) {
  return Tensor::from_storage(staged, source.dtype(), IntList(source.sizes().begin(), source.sizes().end()),
                              IntList(source.strides().begin(), source.strides().end()), source.storage_offset());
}

void MinimalStager::copy_attributes(const Tensor& source, Tensor& staged) {
  for (const auto& [name, value] : source.attrs()) {
    PathScope scope(state_.path, std::string_view(name));
    staged.set_attr(name, stage_value(value));
  }
}

Value MinimalStager::rebuild_object(const Object& source, Fields staged_fields) {
  return Value(std::make_shared<Object>(source.type_name(), std::move(staged_fields), source.frozen(), source.slots()));
}

Value MinimalStager::rebuild_tuple(const Tuple& source, std::vector<Value> staged_items) {
  if (!source.is_named()) return Value::tuple(std::move(staged_items));
  return Value(std::make_shared<Tuple>(std::move(staged_items), source.type_name(), source.field_names()));
}

Value MinimalStager::rebuild_dict(const Dict& source, std::vector<Value> staged_values) {
  if (std::all_of(staged_values.begin(), staged_values.end(), [&](const Value& v) { return keeps_entry(v); }))
    return Value(Dict::with_keys_of(source, std::move(staged_values)));  // keys and type name of `source`
  auto dict = std::make_shared<Dict>();
  dict->set_type_name(source.type_name());
  for (std::size_t i = 0; i < staged_values.size(); ++i) {
    if (keeps_entry(staged_values[i])) dict->set(source.entries()[i].first, staged_values[i]);
  }
  return Value(std::move(dict));
}

}  // namespace stagekit_example
