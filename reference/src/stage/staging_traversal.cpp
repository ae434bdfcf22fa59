#include "staging_traversal.h"

#include <algorithm>

#include <fmt/format.h>

#include "../core/tensor_elements.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"

namespace stagekit::detail {
namespace {
constexpr std::size_t kPrefetchDistance = 6;
// Containers with at least this many independent leaves stage them in parallel.
constexpr std::size_t kParallelLeafMin = 2048;
}  // namespace

// What a worker produces while staging the items of a large container in parallel.
struct StagingTraversal::LeafOutput {
  std::vector<std::pair<Storage, Storage>> new_entries;
  CopyPlan plan;
  std::vector<std::size_t> sequential;  // items left for the sequential walk
  std::size_t error_item = static_cast<std::size_t>(-1);
  std::exception_ptr error;
};

StagingTraversal::StagingTraversal(const StagerOptions& options, const StorageCache& cache, CopyEngine& engine,
                                   TraversalSizes hint, bool keep_alive)
    : options_(options), cache_(cache), engine_(engine), keep_alive_(keep_alive) {
  memo_.reserve(hint.nodes);
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
    case Value::Kind::bytes: return v;
    case Value::Kind::opaque:
      throw Unsupported(fmt::format("cannot stage a value of opaque type '{}': stagekit does not know how to copy it",
                                    v.as_opaque().type_name()),
                        path_.str());
    case Value::Kind::dtensor:
    case Value::Kind::sharded_tensor:
    case Value::Kind::tensor:
    case Value::Kind::list:
    case Value::Kind::tuple:
    case Value::Kind::dict:
    case Value::Kind::set:
    case Value::Kind::object: break;
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
    case Value::Kind::tensor: out = stage_tensor(v.as_tensor()); break;
    case Value::Kind::list: {
      const auto& items = v.as_list().items;
      out = Value::list(stage_items(items, [&](std::size_t i) { path_.push_index(i); }));
      break;
    }
    case Value::Kind::tuple: {
      const Tuple& source = v.as_tuple();
      std::vector<Value> items = stage_items(source.items(), [&](std::size_t i) { path_.push_index(i); });
      out = source.is_named()
                ? Value(std::make_shared<Tuple>(std::move(items), source.type_name(), source.field_names()))
                : Value::tuple(std::move(items));
      break;
    }
    case Value::Kind::set: {
      // Set items are plain values (no tensors): the copy is a new set (or frozenset) of the same items.
      const Set& source = v.as_set();
      out = Value(std::make_shared<Set>(source.items(), source.frozen()));
      break;
    }
    case Value::Kind::dict: {
      const Dict& source = v.as_dict();
      const auto& entries = source.entries();
      struct Values {
        const std::vector<Dict::Entry>& entries;
        [[nodiscard]] std::size_t size() const { return entries.size(); }
        const Value& operator[](std::size_t i) const { return entries[i].second; }
      };
      out = Value(Dict::with_keys_of(
          source, stage_items(Values{entries}, [&](std::size_t i) { path_.push_key(entries[i].first); })));
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
      out = Value(std::make_shared<Object>(source.type_name(), std::move(fields), source.frozen(), source.slots()));
      break;
    }
    case Value::Kind::dtensor: {
      // The local tensor is staged like any tensor (sharing and the cache apply); the spec is kept.
      const DTensor& source = *v.as_dtensor_node();
      out = Value(source.with_local(stage_value(Value(source.local())).as_tensor()));
      break;
    }
    case Value::Kind::sharded_tensor: {
      // Every local shard is staged like any tensor; the shard and global metadata are kept.
      const ShardedTensor& source = *v.as_sharded_tensor_node();
      std::vector<Tensor> staged;
      staged.reserve(source.local_shards().size());
      for (std::size_t i = 0; i < source.local_shards().size(); ++i) {
        PathScope scope(path_, i);
        staged.push_back(stage_value(Value(source.local_shards()[i].tensor)).as_tensor());
      }
      out = Value(source.with_local_tensors(std::move(staged)));
      break;
    }
    default: STAGEKIT_INTERNAL_ASSERT(false);
  }
  if (track) leave(id);
  return out;
}

template <class Items, class PathOf>
std::vector<Value> StagingTraversal::stage_items(const Items& items, PathOf path_of) {
  const std::size_t n = items.size();
  std::vector<Value> values(n);
  std::vector<std::size_t> sequential;
  if (n >= kParallelLeafMin && engine_.threads() > 1) {
    sequential = stage_leaves_in_parallel(
        n, [&](std::size_t i) -> const Value& { return items[i]; }, values, [&](std::size_t i) { path_of(i); });
  } else {
    sequential.resize(n);
    for (std::size_t i = 0; i < n; ++i) sequential[i] = i;
  }
  for (std::size_t k = 0; k < sequential.size(); ++k) {
    // Large containers are latency bound: fetch the nodes a few items ahead.
    if (k + kPrefetchDistance < sequential.size()) items[sequential[k + kPrefetchDistance]].prefetch();
    const std::size_t i = sequential[k];
    path_of(i);
    values[i] = stage_value(items[i]);  // on an error the traversal is abandoned: no pop needed
    path_.pop();
  }
  return values;
}

std::vector<std::size_t> StagingTraversal::stage_leaves_in_parallel(
    std::size_t n, const std::function<const Value&(std::size_t)>& item, std::vector<Value>& values,
    const std::function<void(std::size_t)>& push_path) {
  const std::size_t parts = engine_.threads();
  std::vector<LeafOutput> outputs(parts);
  const auto work = [&](std::size_t part) {
    LeafOutput& out = outputs[part];
    const std::size_t end = n * (part + 1) / parts;
    for (std::size_t i = n * part / parts; i < end; ++i) {
      if (i + kPrefetchDistance < end) item(i + kPrefetchDistance).prefetch();
      const Value& v = item(i);
      // Only independent leaves here (see Note [Independent leaves]); everything else waits.
      if (!v.is_tensor() || v.use_count() != 1 || !v.as_tensor().attrs().empty()) {
        out.sequential.push_back(i);
        continue;
      }
      try {
        if (!stage_independent_leaf(v.as_tensor(), values[i], out)) out.sequential.push_back(i);
      } catch (...) {
        out.error_item = i;
        out.error = std::current_exception();
        return;
      }
    }
  };
  engine_.parallel_for(parts, work);
  // Parts cover ascending ranges: the first part with an error holds the first failing leaf.
  for (LeafOutput& out : outputs) {
    if (!out.error) continue;
    push_path(out.error_item);
    try {
      std::rethrow_exception(out.error);
    } catch (const Error& e) {
      e.with_path(path_.str())->rethrow();
    }
  }
  std::vector<std::size_t> sequential;
  for (LeafOutput& out : outputs) {
    for (auto& entry : out.new_entries) new_entries_.push_back(std::move(entry));
    plan_.append(std::move(out.plan));
    sequential.insert(sequential.end(), out.sequential.begin(), out.sequential.end());
  }
  return sequential;
}

bool StagingTraversal::stage_independent_leaf(const Tensor& t, Value& slot, LeafOutput& out) const {
  check_tensor(t);
  const Storage& source = t.storage();
  Storage buffer;
  if (!source.defined()) {
    buffer = allocate_buffer(0);
  } else if (const auto* entry = cached_->find(source); entry != nullptr && entry->staged.nbytes() == source.nbytes()) {
    if (cached_->claim(*entry)) out.plan.add(source, entry->staged, keep_alive_);
    buffer = entry->staged;
  } else if (source.use_count() > 1) {
    return false;  // a new buffer for a storage other tensors share: the sequential pass owns the memo
  } else {
    buffer = allocate_buffer(source.nbytes());
    out.new_entries.emplace_back(source, buffer);
    out.plan.add(source, buffer, keep_alive_);
  }
  slot = Value(t.on_storage(std::move(buffer)));
  return true;
}

void StagingTraversal::check_tensor(const Tensor& t) const {
  const auto sizes = t.sizes();
  const auto strides = t.strides();
  auto bad = [&](const std::string& why) {
    throw InvalidArgument(fmt::format("malformed tensor {}: {}", t.describe(), why));
  };
  if (sizes.size() != strides.size()) bad("sizes and strides differ in length");
  if (t.storage_offset() < 0) bad("negative storage offset");
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0 || strides[i] < 0) bad("negative size or stride");
  }
  const auto extent = addressed_extent(sizes, strides, t.storage_offset(), t.element_size());
  if (!extent) bad("its addressed range overflows");
  if (t.device().is_meta()) bad("it is on the meta device, which holds no data to stage");
  if (!t.device().is_cpu() && !t.device().is_cuda())
    throw Unsupported("tensor on unsupported device " + t.device().str());
  if (extent->numel == 0) return;
  if (!t.storage().defined()) bad(fmt::format("it has {} element(s) but no storage", extent->numel));
  if (t.storage().data() == nullptr)
    bad(fmt::format("it has {} element(s) but its storage has no data", extent->numel));
  if (extent->end_byte > t.storage().nbytes()) {
    bad(fmt::format("view out of bounds: it addresses bytes [{}, {}) but its storage holds {} bytes",
                    extent->begin_byte, extent->end_byte, t.storage().nbytes()));
  }
}

Value StagingTraversal::stage_tensor(const Tensor& t) {
  try {
    check_tensor(t);
  } catch (const Error& e) {
    e.with_path(path_.str())->rethrow();
  }
  Storage buffer = t.storage().defined() ? stage_storage(t.storage()) : allocate_buffer(0);
  Tensor out = t.on_storage(std::move(buffer));
  for (const auto& [name, value] : t.attrs()) {
    PathScope scope(path_, std::string_view(name));
    out.set_attr(name, stage_value(value));
  }
  return Value(std::move(out));
}

Storage StagingTraversal::allocate_buffer(std::size_t nbytes) const {
  const bool pin = options_.pin_memory && nbytes > 0 && nbytes >= options_.pin_memory_min_bytes;
  return Storage::allocate_with(host_allocator(host_memory_kind(pin, options_.share_memory)), nbytes);
}

Storage StagingTraversal::stage_storage(const Storage& source) {
  const std::size_t nbytes = source.nbytes();
  if (const auto* entry = cached_->find(source); entry != nullptr && entry->staged.nbytes() == nbytes) {
    if (cached_->claim(*entry)) plan_.add(source, entry->staged, keep_alive_);
    return entry->staged;
  }
  // Not cached, or resized since: one new buffer per distinct storage of this stage. A storage with
  // one handle belongs to this tensor alone, so only shared ones go through the memo.
  const bool shared = source.use_count() > 1;
  if (shared) {
    if (auto it = storage_memo_.find(source.identity()); it != storage_memo_.end()) return it->second;
  }
  Storage buffer;
  try {
    buffer = allocate_buffer(nbytes);
  } catch (const Error& e) {
    e.with_path(path_.str())->rethrow();
  }
  new_entries_.emplace_back(source, buffer);
  plan_.add(source, buffer, keep_alive_);
  if (shared) storage_memo_.emplace(source.identity(), buffer);
  return buffer;
}

}  // namespace stagekit::detail
