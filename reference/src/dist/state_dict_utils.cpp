// The distributed state-dict utilities over one recursive map (upstream's _iterate_state_dict).
#include "stagekit/dist/state_dict_utils.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <unordered_set>

#include "packed_broadcast.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/state_path.h"
#include "stagekit/dist/redistribute.h"
#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::dist {
namespace {

using TensorFn = std::function<Value(const Tensor&, const Value* companion)>;
using DTensorFn = std::function<Value(const std::shared_ptr<DTensor>&, const Value* companion)>;
using ShardedFn = std::function<Value(const std::shared_ptr<ShardedTensor>&, const Value* companion)>;

struct IterateSpec {
  TensorFn tensor;
  DTensorFn dtensor;
  ShardedFn sharded;
  bool cpu_offload = false;
  bool type_check = true;
  bool keep = true;  // false on a rank not in ranks_only
  bool non_blocking = false;
};

bool is_tensor_like(const Value& v) {
  return v.is_tensor() || v.kind() == Value::Kind::dtensor || v.kind() == Value::Kind::sharded_tensor;
}

std::string shape_str(std::span<const std::int64_t> s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

// A tuple of `like`'s type (a namedtuple stays one) holding `items`.
Value same_tuple_type(const Tuple& like, std::vector<Value> items) {
  if (!like.is_named()) return Value::tuple(std::move(items));
  return Value(std::make_shared<Tuple>(std::move(items), like.type_name(), like.field_names()));
}

// Python's deep copy for the leaves the iterator does not know (type_check off).
Value deep_copy(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::tensor: return Value(v.as_tensor().clone());
    case Value::Kind::list: {
      std::vector<Value> items;
      for (const Value& i : v.as_list().items) items.push_back(deep_copy(i));
      return Value::list(std::move(items));
    }
    case Value::Kind::tuple: {
      std::vector<Value> items;
      for (const Value& i : v.as_tuple().items()) items.push_back(deep_copy(i));
      return same_tuple_type(v.as_tuple(), std::move(items));
    }
    case Value::Kind::dict: {
      auto d = std::make_shared<Dict>();
      d->set_type_name(v.as_dict().type_name());
      d->set_default_factory(v.as_dict().default_factory());
      for (const auto& [k, i] : v.as_dict().entries()) d->set(k, deep_copy(i));
      return Value(d);
    }
    case Value::Kind::set: return Value(std::make_shared<Set>(v.as_set().items(), v.as_set().frozen()));
    case Value::Kind::object: {
      const Object& o = v.as_object();
      std::vector<std::pair<std::string, Value>> fields;
      for (const auto& [n, i] : o.fields()) fields.emplace_back(n, deep_copy(i));
      return Value(std::make_shared<Object>(o.type_name(), std::move(fields), o.frozen(), o.slots()));
    }
    default: return v;  // scalars, strings, bytes, opaque handles: shared
  }
}

void copy_into(const Tensor& dst, const Tensor& src, const PathStack& path) {
  const IntList ds(dst.sizes().begin(), dst.sizes().end());
  const IntList ss(src.sizes().begin(), src.sizes().end());
  if (ds != ss || dst.dtype() != src.dtype()) {
    throw CompanionMismatch(fmt::format("the companion tensor is {} {} but the source is {} {}",
                                        dtype_name(dst.dtype()), shape_str(ds), dtype_name(src.dtype()), shape_str(ss)),
                            path.str());
  }
  if (src.numel() > 0 && !dst.is_same(src)) {
    Tensor target = dst;  // a handle: copies into dst's storage
    target.copy_(src);
  }
}

Tensor to_cpu(const Tensor& t) { return t.device().is_cpu() ? t : t.to(Device::cpu()); }

// Places host tensors on a device without losing storage sharing: each distinct storage is copied
// to the device once, and every tensor becomes a plain tensor (no attributes) with its own sizes,
// strides and offset over that copy. On the CPU the storages are used as they are.
class SharingPlacement {
 public:
  explicit SharingPlacement(Device device) : device_(device) {}

  Tensor operator()(const Tensor& t) {
    const Storage& storage = t.storage();
    if (!storage.defined()) return t.on_storage(Storage::allocate(0, device_));  // no elements
    if (device_.is_cpu()) return t.on_storage(storage);
    auto [it, inserted] = copies_.try_emplace(storage.identity());
    if (inserted) {
      it->second = Storage::allocate(storage.nbytes(), device_);
      copy_bytes(it->second, 0, storage, 0, storage.nbytes());
    }
    return t.on_storage(it->second);
  }

 private:
  Device device_;
  std::map<const void*, Storage> copies_;  // host storage -> its copy on device_
};

std::string_view type_name_of(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::object: return v.as_object().type_name();
    case Value::Kind::opaque: return v.as_opaque().type_name();
    case Value::Kind::set: return v.as_set().frozen() ? "frozenset" : "set";
    default: return value_kind_name(v.kind());
  }
}

class Iterator {
 public:
  explicit Iterator(const IterateSpec& spec) : spec_(spec) {}

  Value run(const Value& v, const Value* companion) {
    Value out = map(v, companion);
    return post_process(std::move(out), companion);
  }

 private:
  [[noreturn]] void mismatch(const std::string& what) const { throw CompanionMismatch(what, path_.str()); }

  Value map(const Value& v, const Value* companion) {
    switch (v.kind()) {
      case Value::Kind::sharded_tensor: try { return spec_.sharded(v.as_sharded_tensor_node(), companion);
        } catch (const Error& e) {
          e.with_path(path_.str())->rethrow();
        }
      case Value::Kind::dtensor: return spec_.dtensor(v.as_dtensor_node(), companion);
      case Value::Kind::tensor: return spec_.tensor(v.as_tensor(), companion);
      case Value::Kind::none:
      case Value::Kind::boolean:
      case Value::Kind::integer:
      case Value::Kind::floating:
      case Value::Kind::string:
      case Value::Kind::bytes: return v;
      case Value::Kind::dict: {
        const Dict& d = v.as_dict();
        if (companion != nullptr) {
          if (companion->kind() != Value::Kind::dict) {
            mismatch(
                fmt::format("the companion is a {} where the source has a dict", value_kind_name(companion->kind())));
          }
          const Dict& c = companion->as_dict();
          for (const auto& [k, x] : d.entries()) {
            if (!c.contains(k)) mismatch(fmt::format("the companion lacks the key '{}'", dict_key_str(k)));
          }
          for (const auto& [k, x] : c.entries()) {
            if (!d.contains(k)) mismatch(fmt::format("the companion has the extra key '{}'", dict_key_str(k)));
          }
        }
        std::vector<Value> values;
        values.reserve(d.size());
        for (const auto& [k, x] : d.entries()) {
          PathScope scope(path_, k);
          values.push_back(run(x, companion != nullptr ? &companion->as_dict().at(k) : nullptr));
        }
        return Value(Dict::with_keys_of(d, std::move(values)));
      }
      case Value::Kind::list:
      case Value::Kind::tuple: {
        const auto& items = v.kind() == Value::Kind::list ? v.as_list().items : v.as_tuple().items();
        const std::vector<Value>* other = nullptr;
        if (companion != nullptr) {
          if (companion->kind() != Value::Kind::list && companion->kind() != Value::Kind::tuple) {
            mismatch(fmt::format("the companion is a {} where the source has a {}", value_kind_name(companion->kind()),
                                 value_kind_name(v.kind())));
          }
          other = companion->kind() == Value::Kind::list ? &companion->as_list().items : &companion->as_tuple().items();
          if (other->size() != items.size()) {
            mismatch(fmt::format("the companion has {} items where the source has {}", other->size(), items.size()));
          }
        }
        std::vector<Value> out;
        out.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
          PathScope scope(path_, i);
          out.push_back(run(items[i], other != nullptr ? &(*other)[i] : nullptr));
        }
        return v.kind() == Value::Kind::list ? Value::list(std::move(out))
                                             : same_tuple_type(v.as_tuple(), std::move(out));
      }
      case Value::Kind::set:
      case Value::Kind::object:
      case Value::Kind::opaque:
        if (spec_.type_check) {
          throw InvalidArgument(fmt::format("unexpected value type {} ({}): the state-dict utilities take tensors, "
                                            "containers and scalars (pass type_check=false to deep-copy it)",
                                            value_kind_name(v.kind()), type_name_of(v)),
                                path_.str());
        }
        return deep_copy(v);
    }
    return v;
  }

  Value post_process(Value out, const Value* companion) {
    if (!spec_.keep) return out.kind() == Value::Kind::dict ? Value(std::make_shared<Dict>()) : Value();
    if (!is_tensor_like(out)) return out;
    if (companion == nullptr) {
      if (!spec_.cpu_offload) return out;
      if (out.is_tensor()) return Value(to_cpu(out.as_tensor()));
      if (out.kind() == Value::Kind::dtensor) {
        const auto& dt = out.as_dtensor_node();
        return dt->local().device().is_cpu() ? out : Value(dt->with_local(to_cpu(dt->local())));
      }
      const auto& st = out.as_sharded_tensor_node();
      std::vector<Tensor> locals;
      for (const auto& s : st->local_shards()) locals.push_back(to_cpu(s.tensor));
      return Value(st->with_local_tensors(std::move(locals)));
    }
    // Copy into the companion, which becomes the result.
    if (companion->kind() == Value::Kind::dtensor) {
      if (out.kind() != Value::Kind::dtensor) mismatch("the companion is a DTensor where the source is not");
      copy_into(companion->as_dtensor_node()->local(), out.as_dtensor_node()->local(), path_);
      return *companion;
    }
    if (companion->kind() == Value::Kind::sharded_tensor) {
      if (out.kind() != Value::Kind::sharded_tensor)
        mismatch("the companion is a ShardedTensor where the source is not");
      const auto& dst = companion->as_sharded_tensor_node()->local_shards();
      const auto& src = out.as_sharded_tensor_node()->local_shards();
      if (dst.size() != src.size()) {
        mismatch(fmt::format("the companion has {} local shards where the source has {}", dst.size(), src.size()));
      }
      for (std::size_t i = 0; i < dst.size(); ++i) {
        PathScope scope(path_, i);
        copy_into(dst[i].tensor, src[i].tensor, path_);
      }
      return *companion;
    }
    if (!companion->is_tensor()) {
      mismatch(fmt::format("the companion is a {} where the source has a {}", value_kind_name(companion->kind()),
                           value_kind_name(out.kind())));
    }
    if (!out.is_tensor()) {
      mismatch(fmt::format("the companion is a tensor where the source has a {}", value_kind_name(out.kind())));
    }
    copy_into(companion->as_tensor(), out.as_tensor(), path_);
    return *companion;
  }

  const IterateSpec& spec_;
  PathStack path_;
};

bool keeps(int rank, const std::vector<int>& ranks_only) {
  return ranks_only.empty() || std::find(ranks_only.begin(), ranks_only.end(), rank) != ranks_only.end();
}

Value identity_tensor(const Tensor& t, const Value*) { return Value(t); }
Value identity_dtensor(const std::shared_ptr<DTensor>& d, const Value*) { return Value(d); }
Value identity_sharded(const std::shared_ptr<ShardedTensor>& s, const Value*) { return Value(s); }

// A fresh zero-filled CPU buffer for create_cpu_state_dict.
Tensor fresh_cpu_like(const Tensor& t, bool pin, bool share) {
  const IntList sizes(t.sizes().begin(), t.sizes().end());
  if (t.dim() == 0) return Tensor::zeros({}, t.dtype());
  if (t.numel() == 0) return Tensor::empty(sizes, t.dtype(), Device::cpu(), host_memory_kind(false, share));
  Tensor out = Tensor::empty(sizes, t.dtype(), Device::cpu(), host_memory_kind(pin, share));
  out.fill_(0);
  return out;
}

// The DTensors the walk of gather_state_dict reaches (dicts, lists and tuples, as the iterator
// descends), each once, in the order it first meets them.
void collect_dtensors(const Value& v, std::vector<std::shared_ptr<DTensor>>& out,
                      std::unordered_set<const DTensor*>& seen) {
  switch (v.kind()) {
    case Value::Kind::dtensor: {
      const auto& d = v.as_dtensor_node();
      if (seen.insert(d.get()).second) out.push_back(d);
      return;
    }
    case Value::Kind::dict:
      for (const auto& [k, item] : v.as_dict().entries()) collect_dtensors(item, out, seen);
      return;
    case Value::Kind::list:
      for (const Value& item : v.as_list().items) collect_dtensors(item, out, seen);
      return;
    case Value::Kind::tuple:
      for (const Value& item : v.as_tuple().items()) collect_dtensors(item, out, seen);
      return;
    default: return;
  }
}

}  // namespace

Value gather_state_dict(const Value& state_dict, Communicator& world, const GatherOptions& options) {
  if (world.backend() == "nccl") {
    throw Unsupported("a state dict is gathered in host memory: use a thread-world or MPI communicator, not NCCL");
  }
  // One set of mesh groups per distinct mesh, created collectively in the order meshes are met.
  std::vector<std::unique_ptr<MeshGroups>> groups;
  auto groups_for = [&](const DeviceMesh& mesh) -> const MeshGroups& {
    for (const auto& g : groups) {
      if (g->mesh() == mesh) return *g;
    }
    groups.push_back(std::make_unique<MeshGroups>(world, mesh));
    return *groups.back();
  };
  // Every DTensor first, together (coalesced where their layout allows), then the walk.
  std::vector<std::shared_ptr<DTensor>> dtensors;
  std::unordered_set<const DTensor*> seen;
  collect_dtensors(state_dict, dtensors, seen);
  const std::vector<Tensor> fulls = full_tensors(dtensors, groups_for, options.output_pool);
  std::map<const DTensor*, Tensor> full_of;
  for (std::size_t i = 0; i < dtensors.size(); ++i) full_of.emplace(dtensors[i].get(), fulls[i]);
  IterateSpec spec;
  spec.tensor = identity_tensor;
  spec.dtensor = [&](const std::shared_ptr<DTensor>& d, const Value*) { return Value(full_of.at(d.get())); };
  const Device working = options.device.value_or(Device::cpu());
  spec.sharded = [&](const std::shared_ptr<ShardedTensor>& s, const Value*) {
    return Value(full_tensor(*s, world, working));
  };
  spec.cpu_offload = options.cpu_offload;
  spec.type_check = options.type_check;
  spec.keep = keeps(world.rank(), options.ranks_only);
  return Iterator(spec).run(state_dict, nullptr);
}

Value offload_state_dict_to_cpu(const Value& state_dict, int rank, const std::vector<int>& ranks_only,
                                bool type_check) {
  IterateSpec spec{
      identity_tensor, identity_dtensor, identity_sharded, true, type_check, keeps(rank, ranks_only), false};
  return Iterator(spec).run(state_dict, nullptr);
}

Value create_cpu_state_dict(const Value& state_dict, bool pin_memory, bool share_memory) {
  IterateSpec spec;
  spec.type_check = false;
  spec.tensor = [&](const Tensor& t, const Value*) { return Value(fresh_cpu_like(t, pin_memory, share_memory)); };
  spec.dtensor = [&](const std::shared_ptr<DTensor>& d, const Value*) {
    if (d->local().dim() == 0) return Value(d);
    return Value(d->with_local(fresh_cpu_like(d->local(), pin_memory, share_memory)));
  };
  spec.sharded = [&](const std::shared_ptr<ShardedTensor>& s, const Value*) {
    if (s->local_shards().empty()) return Value(s);
    std::vector<Tensor> locals;
    for (const auto& shard : s->local_shards())
      locals.push_back(fresh_cpu_like(shard.tensor, pin_memory, share_memory));
    return Value(s->with_local_tensors(std::move(locals)));
  };
  return Iterator(spec).run(state_dict, nullptr);
}

Value copy_state_dict(const Value& source, const Value& destination, bool non_blocking, bool type_check) {
  IterateSpec spec{identity_tensor, identity_dtensor, identity_sharded, false, type_check, true, non_blocking};
  return Iterator(spec).run(source, &destination);
}

bool check_state_dict_similarity(const Value& state_dict, const Value& other) {
  // A read-only walk (upstream's check copies into `other`; this one never writes).
  std::function<bool(const Value&, const Value&)> similar = [&](const Value& a, const Value& b) -> bool {
    auto same_tensor = [](const Tensor& x, const Tensor& y) {
      return x.dtype() == y.dtype() &&
             IntList(x.sizes().begin(), x.sizes().end()) == IntList(y.sizes().begin(), y.sizes().end());
    };
    switch (a.kind()) {
      case Value::Kind::tensor: return b.is_tensor() && same_tensor(a.as_tensor(), b.as_tensor());
      case Value::Kind::dtensor:
        return b.kind() == Value::Kind::dtensor &&
               same_tensor(a.as_dtensor_node()->local(), b.as_dtensor_node()->local()) &&
               a.as_dtensor_node()->global_shape() == b.as_dtensor_node()->global_shape();
      case Value::Kind::sharded_tensor: {
        if (b.kind() != Value::Kind::sharded_tensor) return false;
        const auto& x = a.as_sharded_tensor_node()->local_shards();
        const auto& y = b.as_sharded_tensor_node()->local_shards();
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (!same_tensor(x[i].tensor, y[i].tensor)) return false;
        }
        return true;
      }
      case Value::Kind::dict: {
        if (b.kind() != Value::Kind::dict || a.as_dict().size() != b.as_dict().size()) return false;
        for (const auto& [k, x] : a.as_dict().entries()) {
          const Value* y = b.as_dict().find(k);
          if (y == nullptr || !similar(x, *y)) return false;
        }
        return true;
      }
      case Value::Kind::list:
      case Value::Kind::tuple: {
        if (b.kind() != Value::Kind::list && b.kind() != Value::Kind::tuple) return false;
        const auto& x = a.kind() == Value::Kind::list ? a.as_list().items : a.as_tuple().items();
        const auto& y = b.kind() == Value::Kind::list ? b.as_list().items : b.as_tuple().items();
        if (x.size() != y.size()) return false;
        for (std::size_t i = 0; i < x.size(); ++i) {
          if (!similar(x[i], y[i])) return false;
        }
        return true;
      }
      default: return true;  // non-tensor leaves are not compared (as upstream)
    }
  };
  return similar(state_dict, other);
}

void distribute_tensors(Value& local_state_dict, const std::vector<std::string>& keys) {
  check_argument(local_state_dict.kind() == Value::Kind::dict, "distribute_tensors takes a dict");
  Dict& dict = local_state_dict.as_dict();
  for (const std::string& key : keys) {
    const Value* v = dict.find(DictKey(key));
    if (v == nullptr || v->kind() == Value::Kind::none || v->is_tensor()) continue;
    if (v->kind() != Value::Kind::list && v->kind() != Value::Kind::tuple) {
      throw InvalidArgument(fmt::format("expected [DTensor, full tensor], got a {}", value_kind_name(v->kind())), key);
    }
    const auto& pair = v->kind() == Value::Kind::list ? v->as_list().items : v->as_tuple().items();
    if (pair.size() != 2 || pair[0].kind() != Value::Kind::dtensor || !pair[1].is_tensor()) {
      throw InvalidArgument("expected [DTensor, full tensor]", key);
    }
    const auto dt = pair[0].as_dtensor_node();
    const Tensor& full = pair[1].as_tensor();
    const IntList full_shape(full.sizes().begin(), full.sizes().end());
    if (full_shape != dt->global_shape() || full.dtype() != dt->local().dtype()) {
      throw CompanionMismatch(
          fmt::format("the full tensor is {} {} but the DTensor's global tensor is {} {}", dtype_name(full.dtype()),
                      shape_str(full_shape), dtype_name(dt->local().dtype()), shape_str(dt->global_shape())),
          key);
    }
    const LocalShard block = dt->local_shard();
    Tensor slice = full;
    for (std::size_t d = 0; d < block.shape.size(); ++d) {
      slice = slice.narrow(static_cast<std::int64_t>(d), std::min(block.offset[d], full_shape[d]), block.shape[d]);
    }
    // A local tensor on the meta device holds no data: a new DTensor is made from a copy of the
    // block, with the old one's mesh, placements and global shape (upstream's meta path). Any other
    // local tensor gets the block in place, and the DTensor object is kept.
    if (dt->local().device().is_meta()) {
      dict.set(DictKey(key), Value(dt->with_local(slice.clone())));
      continue;
    }
    if (slice.numel() > 0) {
      Tensor target = dt->local();
      target.copy_(slice);
    }
    dict.set(DictKey(key), Value(dt));
  }
}

void distribute_state_dict(const Value& full_state_dict, Value& local_state_dict, Device device) {
  check_argument(full_state_dict.kind() == Value::Kind::dict && local_state_dict.kind() == Value::Kind::dict,
                 "distribute_state_dict takes dicts");
  Dict& local = local_state_dict.as_dict();
  for (const auto& [key, value] : full_state_dict.as_dict().entries()) {
    if (!value.is_tensor()) {
      local.set(key, value);
      continue;
    }
    const Tensor& full = value.as_tensor();
    if (full.dim() == 0) {
      local.set(key, Value(full.to(Device::cpu())));
      continue;
    }
    const Value* mine = local.find(key);
    if (mine == nullptr || mine->kind() == Value::Kind::none) continue;
    if (mine->kind() == Value::Kind::dtensor) {
      const auto& dt = mine->as_dtensor_node();
      local.set(key, Value(DTensor::distribute(full.to(device), dt->spec().mesh, dt->spec().placements, dt->rank())));
    } else {
      local.set(key, Value(full.to(device)));
    }
  }
}

void broadcast_state_dict(const Value& full_state_dict, Value& local_state_dict, Communicator& world, bool strict,
                          bool cpu_offload, Device device) {
  broadcast_state_dict(full_state_dict, local_state_dict, world, BroadcastOptions{strict, cpu_offload, device});
}

void broadcast_state_dict(const Value& full_state_dict, Value& local_state_dict, Communicator& world,
                          const BroadcastOptions& options) {
  const bool strict = options.strict;
  const bool cpu_offload = options.cpu_offload;
  const Device device = options.device;
  check_argument(local_state_dict.kind() == Value::Kind::dict, "broadcast_state_dict takes a local dict");
  // 1. Rank 0's full dict arrives on every rank, sharing, offsets and strides as on rank 0: over new
  //    host storages, one per distinct storage of rank 0's dict, and on rank 0 over its own.
  const Value full = detail::broadcast_packed(
      world, 0,
      [&] {
        check_argument(full_state_dict.kind() == Value::Kind::dict, "broadcast_state_dict: rank 0 needs a full dict");
        return replicate::pack_state_dict(full_state_dict);
      },
      options.output_pool);

  // 2. Entry by entry, in rank 0's order.
  Dict& local = local_state_dict.as_dict();
  std::vector<DictKey> seen;
  SharingPlacement place(cpu_offload ? Device::cpu() : device);
  for (const auto& [key, value] : full.as_dict().entries()) {
    seen.push_back(key);
    if (!value.is_tensor() || value.as_tensor().dim() == 0) {
      if (local.contains(key)) local.set(key, value);
      continue;
    }
    const Value* mine = local.find(key);
    if (mine == nullptr || mine->is_none()) continue;
    const Tensor placed = place(value.as_tensor());
    if (mine->kind() == Value::Kind::dtensor) {
      const auto& dt = mine->as_dtensor_node();
      local.set(key, Value(DTensor::distribute(placed, dt->spec().mesh, dt->spec().placements, dt->rank())));
    } else {
      local.set(key, Value(placed));
    }
  }
  // 3. strict: keep only rank 0's keys.
  if (strict) {
    auto kept = std::make_shared<Dict>();
    for (const auto& [key, value] : local.entries()) {
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) kept->set(key, value);
    }
    local_state_dict = Value(kept);
  }
}

}  // namespace stagekit::dist
