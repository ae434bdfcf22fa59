// The suite must bite on the state-dict utilities: the reference utilities with one flaw each are run
// through the cases that check that property, which must fail, while a case that does not depend on
// it passes.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <thread>
#include <utility>
#include <variant>

#include "case_outcome.h"
#include "container_mutations.h"
#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "verify/verify.h"

namespace stagekit::conformance {
namespace {

enum class UtilityFlaw {
  ignores_ranks_only,
  gathers_local_only,
  similarity_writes,
  create_aliases,
  copy_unchecked,
  create_always_pinned_shared,
  offload_copies_cpu_inputs,
  similarity_by_value,
  flatten_last_key_wins,
  type_check_ignored,
  strict_ignored,
  distribute_into_new_dtensors,
  partial_as_replicate,
  distribute_adds_no_keys,
  timeout_reported_late,
  plain_containers,             // offloading and create_cpu_state_dict make namedtuples and dict subclasses plain
  meta_locals_kept,             // distribute_tensors leaves a DTensor whose local tensor is on the meta device as it is
  device_ignored,               // gather_state_dict drops `device`
  device_for_dtensors,          // gather_state_dict moves gathered DTensors to `device` too
  gather_copies_plain,          // gather_state_dict returns copies of plain tensors
  created_kept,                 // create_cpu_state_dict keeps every state dict it made (its buffers never released)
  shard_offsets_rebased,        // offloading and create_cpu_state_dict reset the local shards' offsets to 0
  copies_first_shard,           // copy_state_dict fills only the first local shard of a ShardedTensor
  set_element_appends,          // set_element appends at an index the list already has instead of setting it
  copy_skips_lists,             // copy_state_dict leaves the tensors inside lists as they were
  create_never_shares,          // create_cpu_state_dict ignores share_memory
  similarity_ignores_dtensors,  // check_state_dict_similarity never compares DTensor leaves
  copy_defers_cpu_copies,       // copy_state_dict(non_blocking) finishes CPU copies of 64 KiB+ later
  broadcast_loses_sharing,      // broadcast_state_dict gives every top-level tensor a storage of its own
  set_element_overwrites,       // set_element replaces a level of another kind instead of raising
  gather_swaps_inner_blocks,    // gather_state_dict swaps two blocks of a DTensor sharded along dim >= 2
  create_uninitialised,         // create_cpu_state_dict leaves leftover bytes in its buffers
  paths_drop_empty_sequences,   // traverse and flatten drop empty lists and tuples
  create_keeps_strides,         // create_cpu_state_dict gives a view's buffer the view's strides (empty_like)
  distribute_aliases_full,      // distribute_state_dict stores the full dict's own tensors where they fit
  broadcast_copies_on_root,     // broadcast_state_dict gives rank 0 copies of its full dict's storages
  copy_error_names_top_key,     // copy_state_dict's companion errors name only the top-level key
  broadcast_splits_nodes,       // broadcast_state_dict makes a list reached twice two lists off rank 0
  broadcast_drops_inner_attrs,  // broadcast_state_dict drops the attributes of tensors inside dict entries
  unflatten_appends,            // unflatten_state_dict appends list leaves in mapping order, not at their index
  distribute_dim0_only,         // distribute_tensors takes the offsets of dimensions past 0 as 0
  type_check_misses_opaque,     // offloading and gather_state_dict let opaque leaves through with type_check=true
  gather_type_check_rank0,      // gather_state_dict applies type_check on rank 0 only
  sim_sharded_ignores_dtype,    // check_state_dict_similarity compares ShardedTensor shards by shape only
  gather_f64_through_f32,       // gather_state_dict rounds a float64 DTensor's values to float32
  gather_tuples_as_lists,       // gather_state_dict rebuilds tuples and namedtuples as lists
  create_shares_objects,        // create_cpu_state_dict returns the source's top-level object leaves
  bcast_drops_opaque,           // broadcast_state_dict leaves out rank 0's entries holding an opaque leaf
};

// `v` without the dict entries that hold an opaque leaf, anywhere under dicts.
Value without_opaque_entries(const Value& v) {
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  d->set_type_name(v.as_dict().type_name());
  for (const auto& [k, x] : v.as_dict().entries()) {
    if (x.kind() != Value::Kind::opaque) d->set(k, without_opaque_entries(x));
  }
  return Value(d);
}

// `v` with every tuple (namedtuples too) under dicts, lists and tuples rebuilt as a list.
Value tuples_as_lists(const Value& v) {
  if (v.kind() == Value::Kind::tuple || v.kind() == Value::Kind::list) {
    std::vector<Value> items;
    for (const Value& x : v.kind() == Value::Kind::tuple ? v.as_tuple().items() : v.as_list().items)
      items.push_back(tuples_as_lists(x));
    return Value::list(std::move(items));
  }
  if (v.kind() != Value::Kind::dict) return v;
  auto d = std::make_shared<Dict>();
  d->set_type_name(v.as_dict().type_name());
  for (const auto& [k, x] : v.as_dict().entries()) d->set(k, tuples_as_lists(x));
  return Value(d);
}

// `other` with every top-level ShardedTensor whose local shards have the shapes of those of `sd`'s
// (whatever their dtype) replaced by `sd`'s.
Value same_shaped_shards_as(const Value& sd, const Value& other) {
  if (sd.kind() != Value::Kind::dict || other.kind() != Value::Kind::dict) return other;
  auto d = std::make_shared<Dict>(other.as_dict());
  for (const auto& [k, v] : other.as_dict().entries()) {
    const Value* mine = sd.as_dict().find(k);
    if (mine == nullptr || mine->kind() != Value::Kind::sharded_tensor || v.kind() != Value::Kind::sharded_tensor)
      continue;
    const auto& a = mine->as_sharded_tensor_node()->local_shards();
    const auto& b = v.as_sharded_tensor_node()->local_shards();
    bool same = a.size() == b.size();
    for (std::size_t i = 0; same && i < a.size(); ++i)
      same = std::ranges::equal(a[i].tensor.sizes(), b[i].tensor.sizes());
    if (same) d->set(k, *mine);
  }
  return Value(d);
}

// A float64 tensor's values rounded to float32 precision (a new tensor, on the same device).
Tensor rounded_through_float32(const Tensor& t) {
  std::vector<std::byte> bytes = t.to_bytes();
  for (std::size_t i = 0; i + 8 <= bytes.size(); i += 8) {
    double d = 0;
    std::memcpy(&d, bytes.data() + i, 8);
    d = static_cast<double>(static_cast<float>(d));
    std::memcpy(bytes.data() + i, &d, 8);
  }
  Tensor out = Tensor::empty(IntList(t.sizes().begin(), t.sizes().end()), DType::float64);
  if (!bytes.empty()) std::memcpy(out.data_ptr(), bytes.data(), bytes.size());
  return t.device().is_cpu() ? out : out.to(t.device());
}

// Whether an opaque leaf is anywhere in `v` (dicts, lists, tuples).
bool holds_opaque(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::opaque: return true;
    case Value::Kind::dict:
      return std::ranges::any_of(v.as_dict().entries(), [](const auto& e) { return holds_opaque(e.second); });
    case Value::Kind::list: return std::ranges::any_of(v.as_list().items, holds_opaque);
    case Value::Kind::tuple: return std::ranges::any_of(v.as_tuple().items(), holds_opaque);
    default: return false;
  }
}

// A ShardedTensor (anywhere under dicts) with its local shards' offsets reset to 0.
Value rebase_shard_offsets(const Value& v) {
  if (v.kind() == Value::Kind::dict) {
    auto d = std::make_shared<Dict>();
    d->set_type_name(v.as_dict().type_name());
    for (const auto& [k, item] : v.as_dict().entries()) d->set(k, rebase_shard_offsets(item));
    return Value(d);
  }
  if (v.kind() != Value::Kind::sharded_tensor || v.as_sharded_tensor_node()->local_shards().empty()) return v;
  const ShardedTensor& st = *v.as_sharded_tensor_node();
  std::vector<LocalTensorShard> shards = st.local_shards();
  for (LocalTensorShard& shard : shards) std::fill(shard.metadata.offsets.begin(), shard.metadata.offsets.end(), 0);
  return Value(std::make_shared<ShardedTensor>(std::move(shards), st.metadata(), st.rank()));
}

// `source` with every ShardedTensor's local shards past the first replaced by the companion's own
// tensors, so that copying them changes nothing.
Value first_shards_only(const Value& source, const Value& companion) {
  if (source.kind() == Value::Kind::dict && companion.kind() == Value::Kind::dict) {
    auto d = std::make_shared<Dict>();
    d->set_type_name(source.as_dict().type_name());
    for (const auto& [k, item] : source.as_dict().entries()) {
      const Value* other = companion.as_dict().find(k);
      d->set(k, other == nullptr ? item : first_shards_only(item, *other));
    }
    return Value(d);
  }
  if (source.kind() != Value::Kind::sharded_tensor || companion.kind() != Value::Kind::sharded_tensor) return source;
  const auto& mine = source.as_sharded_tensor_node()->local_shards();
  const auto& theirs = companion.as_sharded_tensor_node()->local_shards();
  if (mine.size() != theirs.size()) return source;
  std::vector<Tensor> tensors;
  for (std::size_t i = 0; i < mine.size(); ++i) tensors.push_back(i == 0 ? mine[i].tensor : theirs[i].tensor);
  return Value(source.as_sharded_tensor_node()->with_local_tensors(std::move(tensors)));
}

// The list `path` without its last key leads to in `root`, if every step exists.
std::optional<Value> existing_list(const Value& root, const dist::ObjectPath& path) {
  Value at = root;
  for (std::size_t i = 0; i + 1 < path.size(); ++i) {
    const DictKey& key = path[i];
    if (at.kind() == Value::Kind::dict && at.as_dict().contains(key)) {
      at = at.as_dict().at(key);
    } else if (at.kind() == Value::Kind::list && std::holds_alternative<std::int64_t>(key) &&
               std::get<std::int64_t>(key) < static_cast<std::int64_t>(at.as_list().items.size())) {
      at = at.as_list().items[static_cast<std::size_t>(std::get<std::int64_t>(key))];
    } else {
      return std::nullopt;
    }
  }
  if (at.kind() != Value::Kind::list) return std::nullopt;
  return at;
}

// `a` and `b` with every position where both hold a DTensor set to None (dicts only).
std::pair<Value, Value> without_common_dtensors(const Value& a, const Value& b) {
  if (a.kind() == Value::Kind::dtensor && b.kind() == Value::Kind::dtensor) return {Value(), Value()};
  if (a.kind() != Value::Kind::dict || b.kind() != Value::Kind::dict) return {a, b};
  auto da = std::make_shared<Dict>(a.as_dict());
  auto db = std::make_shared<Dict>(b.as_dict());
  for (const auto& [k, v] : a.as_dict().entries()) {
    const Value* w = b.as_dict().find(k);
    if (w == nullptr) continue;
    auto [x, y] = without_common_dtensors(v, *w);
    da->set(k, x);
    db->set(k, y);
  }
  return {Value(da), Value(db)};
}

// The pairs of top-level CPU tensors of 64 KiB or more in `src` and their destination in `dst`.
std::vector<std::pair<Tensor, Tensor>> large_cpu_pairs(const Value& src, const Value& dst) {
  std::vector<std::pair<Tensor, Tensor>> out;
  if (src.kind() != Value::Kind::dict || dst.kind() != Value::Kind::dict) return out;
  for (const auto& [k, v] : src.as_dict().entries()) {
    const Value* d = dst.as_dict().find(k);
    if (d == nullptr || !v.is_tensor() || !d->is_tensor() || !v.as_tensor().device().is_cpu()) continue;
    if (v.as_tensor().addressed_bytes() >= (std::size_t{64} << 10)) out.emplace_back(v.as_tensor(), d->as_tensor());
  }
  return out;
}

// The blocks of mesh coordinates 0 and 1 swapped in `gathered`, for every top-level DTensor of `source`
// sharded along a dimension >= 2 of a 1-D mesh into even blocks.
void swap_inner_blocks(const Value& source, const Value& gathered) {
  if (source.kind() != Value::Kind::dict || gathered.kind() != Value::Kind::dict) return;
  for (const auto& [k, v] : source.as_dict().entries()) {
    const Value* out = gathered.as_dict().find(k);
    if (v.kind() != Value::Kind::dtensor || out == nullptr || !out->is_tensor()) continue;
    const DTensorSpec& spec = v.as_dtensor_node()->spec();
    if (spec.mesh.ndim() != 1 || spec.placements.size() != 1 || !spec.placements[0].is_shard()) continue;
    const std::int64_t dim = spec.placements[0].dim;
    const std::int64_t n = spec.mesh.size(0);
    if (dim < 2 || n < 2 || spec.global_shape[static_cast<std::size_t>(dim)] % n != 0) continue;
    const std::int64_t block = spec.global_shape[static_cast<std::size_t>(dim)] / n;
    Tensor t = out->as_tensor();
    const Tensor first = t.narrow(dim, 0, block).clone();
    t.narrow(dim, 0, block).copy_(t.narrow(dim, block, block));
    t.narrow(dim, block, block).copy_(first);
  }
}

// Every tensor buffer `created` made (not the source's own objects) filled with leftover bytes.
void fill_with_leftovers(const Value& source, const Value& created) {
  if (source.kind() != Value::Kind::dict || created.kind() != Value::Kind::dict) return;
  for (const auto& [k, v] : created.as_dict().entries()) {
    const Value* s = source.as_dict().find(k);
    if (s != nullptr && s->identity() == v.identity()) continue;  // returned as the original
    if (v.is_tensor() && v.as_tensor().dim() > 0 && v.as_tensor().numel() > 0)
      Tensor(v.as_tensor()).random_bytes_(0xA5A5);
  }
}

bool empty_sequence(const Value& v) {
  return (v.kind() == Value::Kind::list && v.as_list().items.empty()) ||
         (v.kind() == Value::Kind::tuple && v.as_tuple().items().empty());
}

// Replaces the first level on `path` whose kind cannot take the next key by None; false if none.
bool clear_mismatching_level(Value& root, const dist::ObjectPath& path) {
  const auto fits = [](const Value& v, const DictKey& next) {
    return v.is_none() ||
           (std::holds_alternative<std::string>(next) ? v.kind() == Value::Kind::dict : v.kind() == Value::Kind::list);
  };
  if (path.empty()) return false;
  if (!fits(root, path[0])) {
    root = Value();
    return true;
  }
  Value at = root;
  for (std::size_t i = 0; i + 1 < path.size() && !at.is_none(); ++i) {
    if (at.kind() == Value::Kind::dict) {
      const Value* child = at.as_dict().find(path[i]);
      if (child == nullptr) return false;
      if (!fits(*child, path[i + 1])) {
        at.as_dict().set(path[i], Value());
        return true;
      }
      at = *child;
    } else {
      auto& items = at.as_list().items;
      const auto index = static_cast<std::size_t>(std::get<std::int64_t>(path[i]));
      if (index >= items.size()) return false;
      if (!fits(items[index], path[i + 1])) {
        items[index] = Value();
        return true;
      }
      at = items[index];
    }
  }
  return false;
}

// unflatten_state_dict that appends a list's leaves in mapping order (an index inside the list
// overwrites there) instead of placing each at its index.
Value unflatten_by_appending(const Value& flat, const dist::FlattenMapping& mapping) {
  Value root = Value::dict();
  const auto fresh = [](const DictKey& next) {
    return std::holds_alternative<std::string>(next) ? Value::dict() : Value::list({});
  };
  for (const auto& [key, path] : mapping) {
    const Value leaf = flat.as_dict().at(key);
    Value at = root;
    for (std::size_t i = 0; i < path.size(); ++i) {
      const bool last = i + 1 == path.size();
      if (at.kind() == Value::Kind::dict) {
        if (last) {
          at.as_dict().set(path[i], leaf);
          break;
        }
        const Value* have = at.as_dict().find(path[i]);
        if (have == nullptr || have->is_none()) at.as_dict().set(path[i], fresh(path[i + 1]));
        at = *at.as_dict().find(path[i]);
        continue;
      }
      auto& items = at.as_list().items;
      const auto index = static_cast<std::size_t>(std::get<std::int64_t>(path[i]));
      if (index >= items.size()) {
        items.push_back(last ? leaf : fresh(path[i + 1]));
        if (last) break;
        at = items.back();
        continue;
      }
      if (last) {
        items[index] = leaf;
        break;
      }
      if (items[index].is_none()) items[index] = fresh(path[i + 1]);
      at = items[index];
    }
  }
  return root;
}

// Each top-level tensor of `d` whose source in `source` is laid out otherwise than contiguously from
// offset 0 moved onto a zeroed buffer of the source storage's size, with the source's layout.
void keep_source_layouts(const Value& source, Value& d) {
  if (source.kind() != Value::Kind::dict || d.kind() != Value::Kind::dict) return;
  std::vector<std::pair<DictKey, Value>> moved;
  for (const auto& [k, v] : d.as_dict().entries()) {
    const Value* s = source.as_dict().find(k);
    if (s == nullptr || !s->is_tensor() || !v.is_tensor()) continue;
    const Tensor& src = s->as_tensor();
    if (src.is_contiguous() && src.storage_offset() == 0) continue;
    moved.emplace_back(k, Value(src.on_storage(Storage::allocate(src.storage().nbytes(), Device::cpu()))));
  }
  for (auto& [k, v] : moved) d.as_dict().set(k, v);
}

// Each top-level tensor of `d` moved onto a copy of its storage (one copy per storage: views stay views).
void copy_top_level_storages(Value& d) {
  if (d.kind() != Value::Kind::dict) return;
  std::map<const void*, Storage> copies;
  std::vector<std::pair<DictKey, Value>> moved;
  for (const auto& [k, v] : d.as_dict().entries()) {
    if (!v.is_tensor() || !v.as_tensor().storage().defined()) continue;
    const Storage& from = v.as_tensor().storage();
    auto [it, fresh] = copies.try_emplace(from.identity());
    if (fresh) {
      it->second = Storage::allocate(from.nbytes(), from.device());
      copy_bytes(it->second, 0, from, 0, from.nbytes());
    }
    moved.emplace_back(k, Value(v.as_tensor().on_storage(it->second)));
  }
  for (auto& [k, v] : moved) d.as_dict().set(k, v);
}

// The reference utilities with one flaw.
class MutantUtilities final : public StateDictUtilitiesUnderTest {
 public:
  MutantUtilities(std::unique_ptr<StateDictUtilitiesUnderTest> inner, UtilityFlaw flaw)
      : inner_(std::move(inner)), flaw_(flaw) {}
  Value gather_state_dict(const Value& sd, dist::Communicator& world, const UtilityGatherOptions& o) override {
    UtilityGatherOptions options = o;
    if (flaw_ == UtilityFlaw::gather_copies_plain && sd.kind() == Value::Kind::dict) {
      const Value out = inner_->gather_state_dict(sd, world, options);
      if (out.kind() != Value::Kind::dict) return out;
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : out.as_dict().entries()) d->set(k, v.is_tensor() ? Value(v.as_tensor().clone()) : v);
      return Value(d);
    }
    if (flaw_ == UtilityFlaw::device_ignored) options.device.reset();
    if (flaw_ == UtilityFlaw::device_for_dtensors && o.device && sd.kind() == Value::Kind::dict) {
      const Value out = inner_->gather_state_dict(sd, world, options);
      if (out.kind() != Value::Kind::dict) return out;
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : out.as_dict().entries()) {
        const bool was_dtensor = sd.as_dict().contains(k) && sd.as_dict().at(k).kind() == Value::Kind::dtensor;
        d->set(k, was_dtensor ? Value(v.as_tensor().to(*o.device)) : v);
      }
      return Value(d);
    }
    if (flaw_ == UtilityFlaw::ignores_ranks_only) options.ranks_only.clear();
    if (flaw_ == UtilityFlaw::type_check_ignored) options.type_check = false;
    if (flaw_ == UtilityFlaw::type_check_misses_opaque && holds_opaque(sd)) options.type_check = false;
    if (flaw_ == UtilityFlaw::gather_type_check_rank0 && world.rank() != 0) options.type_check = false;
    if (flaw_ == UtilityFlaw::partial_as_replicate) {  // no sum: each rank keeps its own pending values
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : sd.as_dict().entries()) {
        if (v.kind() != Value::Kind::dtensor) {
          d->set(k, v);
          continue;
        }
        const DTensor& dt = *v.as_dtensor_node();
        DTensorSpec spec = dt.spec();
        for (Placement& p : spec.placements) {
          if (p.kind == Placement::Kind::partial) p = Placement::replicate();
        }
        d->set(k, Value(std::make_shared<DTensor>(dt.local(), spec, dt.rank())));
      }
      return inner_->gather_state_dict(Value(d), world, options);
    }
    if (flaw_ == UtilityFlaw::gathers_local_only) {
      auto d = std::make_shared<Dict>();
      for (const auto& [k, v] : sd.as_dict().entries()) {
        if (v.kind() == Value::Kind::dtensor) {
          d->set(k, Value(v.as_dtensor_node()->local()));
        } else if (v.kind() == Value::Kind::sharded_tensor && !v.as_sharded_tensor_node()->local_shards().empty()) {
          d->set(k, Value(v.as_sharded_tensor_node()->local_shards().front().tensor));
        } else {
          d->set(k, v);
        }
      }
      return inner_->gather_state_dict(Value(d), world, options);
    }
    if (flaw_ == UtilityFlaw::gather_f64_through_f32 && sd.kind() == Value::Kind::dict) {
      const Value out = inner_->gather_state_dict(sd, world, options);
      if (out.kind() != Value::Kind::dict) return out;
      auto d = std::make_shared<Dict>(out.as_dict());  // each float64 DTensor's full tensor through float32
      for (const auto& [k, v] : sd.as_dict().entries()) {
        const Value* got = out.as_dict().find(k);
        if (v.kind() == Value::Kind::dtensor && v.as_dtensor_node()->local().dtype() == DType::float64 &&
            got != nullptr && got->is_tensor())
          d->set(k, Value(rounded_through_float32(got->as_tensor())));
      }
      return Value(d);
    }
    if (flaw_ == UtilityFlaw::gather_tuples_as_lists)
      return tuples_as_lists(inner_->gather_state_dict(sd, world, options));
    if (flaw_ == UtilityFlaw::gather_swaps_inner_blocks) {
      Value out = inner_->gather_state_dict(sd, world, options);
      swap_inner_blocks(sd, out);
      return out;
    }
    if (flaw_ == UtilityFlaw::timeout_reported_late) {
      try {
        return inner_->gather_state_dict(sd, world, options);
      } catch (const Error& e) {
        if (e.code() == ErrorCode::timeout) std::this_thread::sleep_for(std::chrono::seconds(2));
        throw;
      }
    }
    return inner_->gather_state_dict(sd, world, options);
  }
  Value offload_state_dict_to_cpu(const Value& sd, int rank, const std::vector<int>& ranks_only,
                                  bool type_check) override {
    if (flaw_ == UtilityFlaw::plain_containers) {
      return plain_top_level_containers(inner_->offload_state_dict_to_cpu(sd, rank, ranks_only, type_check));
    }
    if (flaw_ == UtilityFlaw::shard_offsets_rebased)
      return rebase_shard_offsets(inner_->offload_state_dict_to_cpu(sd, rank, ranks_only, type_check));
    if (flaw_ == UtilityFlaw::offload_copies_cpu_inputs) {  // copies every tensor, CPU ones too
      return inner_->copy_state_dict(sd, inner_->create_cpu_state_dict(sd, false, false), false, false);
    }
    return inner_->offload_state_dict_to_cpu(sd, rank,
                                             flaw_ == UtilityFlaw::ignores_ranks_only ? std::vector<int>{} : ranks_only,
                                             type_check && flaw_ != UtilityFlaw::type_check_ignored &&
                                                 !(flaw_ == UtilityFlaw::type_check_misses_opaque && holds_opaque(sd)));
  }
  Value create_cpu_state_dict(const Value& sd, bool pin, bool share) override {
    if (flaw_ == UtilityFlaw::created_kept) return created_.emplace_back(inner_->create_cpu_state_dict(sd, pin, share));
    if (flaw_ == UtilityFlaw::shard_offsets_rebased)
      return rebase_shard_offsets(inner_->create_cpu_state_dict(sd, pin, share));
    if (flaw_ == UtilityFlaw::create_aliases) return inner_->offload_state_dict_to_cpu(sd, 0, {}, false);
    if (flaw_ == UtilityFlaw::create_always_pinned_shared) return inner_->create_cpu_state_dict(sd, true, true);
    if (flaw_ == UtilityFlaw::create_never_shares) return inner_->create_cpu_state_dict(sd, pin, false);
    if (flaw_ == UtilityFlaw::create_keeps_strides) {
      Value out = inner_->create_cpu_state_dict(sd, pin, share);
      keep_source_layouts(sd, out);
      return out;
    }
    if (flaw_ == UtilityFlaw::create_uninitialised) {
      Value out = inner_->create_cpu_state_dict(sd, pin, share);
      fill_with_leftovers(sd, out);
      return out;
    }
    if (flaw_ == UtilityFlaw::plain_containers)
      return plain_top_level_containers(inner_->create_cpu_state_dict(sd, pin, share));
    if (flaw_ == UtilityFlaw::create_shares_objects && sd.kind() == Value::Kind::dict) {
      Value out = inner_->create_cpu_state_dict(sd, pin, share);
      std::vector<std::pair<DictKey, Value>> shared;  // the source's own object where the copy has one
      for (const auto& [k, v] : sd.as_dict().entries()) {
        const Value* made = out.as_dict().find(k);
        if (v.kind() == Value::Kind::object && made != nullptr && made->kind() == Value::Kind::object)
          shared.emplace_back(k, v);
      }
      for (auto& [k, v] : shared) out.as_dict().set(k, v);
      return out;
    }
    return inner_->create_cpu_state_dict(sd, pin, share);
  }
  Value copy_state_dict(const Value& src, const Value& dst, bool non_blocking, bool type_check) override {
    if (flaw_ == UtilityFlaw::copies_first_shard)
      return inner_->copy_state_dict(first_shards_only(src, dst), dst, non_blocking, type_check);
    if (flaw_ == UtilityFlaw::copy_skips_lists && dst.kind() == Value::Kind::dict) {
      std::vector<std::pair<Tensor, Tensor>> kept;  // a list's tensor in the destination, and its bytes before
      for (const auto& [key, item] : dst.as_dict().entries()) {
        if (item.kind() != Value::Kind::list) continue;
        for (const Value& t : item.as_list().items) {
          if (t.is_tensor()) kept.emplace_back(t.as_tensor(), t.as_tensor().clone());
        }
      }
      Value out = inner_->copy_state_dict(src, dst, non_blocking, type_check);
      for (const auto& [t, before] : kept) copy_bytes(t.storage(), 0, before.storage(), 0, t.storage().nbytes());
      return out;
    }
    if (flaw_ == UtilityFlaw::copy_defers_cpu_copies && non_blocking) {  // large CPU copies land 300 ms later
      const std::vector<std::pair<Tensor, Tensor>> large = large_cpu_pairs(src, dst);
      std::vector<Tensor> before;
      for (const auto& [from, to] : large) before.push_back(to.clone());
      Value out = inner_->copy_state_dict(src, dst, non_blocking, type_check);
      for (std::size_t i = 0; i < large.size(); ++i) Tensor(large[i].second).copy_(before[i]);
      late_copies_.emplace_back([large] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        for (const auto& [from, to] : large) Tensor(to).copy_(from);
      });
      return out;
    }
    if (flaw_ == UtilityFlaw::copy_error_names_top_key) {
      try {
        return inner_->copy_state_dict(src, dst, non_blocking, type_check);
      } catch (const InvalidArgument& e) {
        const std::string top = e.path().substr(0, e.path().find_first_of(".["));
        throw InvalidArgument(e.detail(), top);
      }
    }
    if (flaw_ == UtilityFlaw::copy_unchecked) {
      try {
        return inner_->copy_state_dict(src, dst, non_blocking, type_check);
      } catch (const InvalidArgument&) {
        return dst;  // swallows the mismatch
      }
    }
    return inner_->copy_state_dict(src, dst, non_blocking, type_check);
  }
  bool check_state_dict_similarity(const Value& sd, const Value& other) override {
    if (flaw_ == UtilityFlaw::similarity_ignores_dtensors) {
      const auto [a, b] = without_common_dtensors(sd, other);
      return inner_->check_state_dict_similarity(a, b);
    }
    if (flaw_ == UtilityFlaw::sim_sharded_ignores_dtype)
      return inner_->check_state_dict_similarity(sd, same_shaped_shards_as(sd, other));
    const bool similar = inner_->check_state_dict_similarity(sd, other);
    if (flaw_ == UtilityFlaw::similarity_writes && similar) (void)inner_->copy_state_dict(sd, other, false, false);
    if (flaw_ == UtilityFlaw::similarity_by_value && similar) {
      for (const TensorLeaf& a : tensor_leaves(sd)) {
        for (const TensorLeaf& b : tensor_leaves(other)) {
          if (a.path == b.path && !Tensor::equal(a.tensor.to(Device::cpu()), b.tensor.to(Device::cpu()))) return false;
        }
      }
    }
    return similar;
  }
  std::vector<std::pair<dist::ObjectPath, Value>> traverse_state_dict(const Value& sd) override {
    auto leaves = inner_->traverse_state_dict(sd);
    if (flaw_ == UtilityFlaw::paths_drop_empty_sequences)
      std::erase_if(leaves, [](const auto& leaf) { return empty_sequence(leaf.second); });
    return leaves;
  }
  dist::FlatStateDict flatten_state_dict(const Value& sd) override {
    if (flaw_ == UtilityFlaw::paths_drop_empty_sequences) {
      const dist::FlatStateDict all = inner_->flatten_state_dict(sd);
      dist::FlatStateDict kept;
      auto flat = std::make_shared<Dict>();
      for (const auto& [key, leaf] : all.flat.as_dict().entries()) {
        if (!empty_sequence(leaf)) flat->set(key, leaf);
      }
      for (const auto& entry : all.mapping) {
        if (flat->contains(DictKey(entry.first))) kept.mapping.push_back(entry);
      }
      kept.flat = Value(flat);
      return kept;
    }
    if (flaw_ != UtilityFlaw::flatten_last_key_wins) return inner_->flatten_state_dict(sd);
    dist::FlatStateDict out;  // a repeated flat key silently replaces the earlier leaf
    auto flat = std::make_shared<Dict>();
    for (const auto& [path, leaf] : inner_->traverse_state_dict(sd)) {
      const std::string key = dist::flat_key(path);
      flat->set(key, leaf);
      out.mapping.emplace_back(key, path);
    }
    out.flat = Value(flat);
    return out;
  }
  void set_element(Value& root, const dist::ObjectPath& path, const Value& value) override {
    if (flaw_ == UtilityFlaw::set_element_appends && !path.empty() &&
        std::holds_alternative<std::int64_t>(path.back())) {
      if (std::optional<Value> list = existing_list(root, path);
          list && std::get<std::int64_t>(path.back()) < static_cast<std::int64_t>(list->as_list().items.size())) {
        list->as_list().items.push_back(value);
        return;
      }
    }
    if (flaw_ == UtilityFlaw::set_element_overwrites) {  // a mismatching level is replaced, not refused
      for (std::size_t attempt = 0;; ++attempt) {
        try {
          inner_->set_element(root, path, value);
          return;
        } catch (const InvalidArgument&) {
          if (attempt > path.size() || !clear_mismatching_level(root, path)) throw;
        }
      }
    }
    inner_->set_element(root, path, value);
  }
  Value unflatten_state_dict(const Value& flat, const dist::FlattenMapping& mapping) override {
    if (flaw_ == UtilityFlaw::unflatten_appends) return unflatten_by_appending(flat, mapping);
    return inner_->unflatten_state_dict(flat, mapping);
  }
  void distribute_tensors(Value& local, const std::vector<std::string>& keys) override {
    if (flaw_ == UtilityFlaw::distribute_into_new_dtensors) {  // the caller's DTensor objects are left behind
      for (const std::string& key : keys) {
        const Value pair = local.as_dict().at(key);
        if (pair.kind() != Value::Kind::list || pair.as_list().items.empty()) continue;
        const Value first = pair.as_list().items.front();
        if (first.kind() != Value::Kind::dtensor) continue;
        const DTensor& dt = *first.as_dtensor_node();
        std::vector<Value> items = pair.as_list().items;
        items.front() = Value(std::make_shared<DTensor>(dt.local().clone(), dt.spec(), dt.rank()));
        local.as_dict().set(key, Value::list(std::move(items)));
      }
    }
    std::vector<std::string> rest = keys;
    if (flaw_ == UtilityFlaw::meta_locals_kept) {  // a meta DTensor is stored as it is, without its block
      std::erase_if(rest, [&](const std::string& key) {
        const Value* pair = local.as_dict().find(DictKey(key));
        if (pair == nullptr || pair->kind() != Value::Kind::list || pair->as_list().items.empty()) return false;
        const Value first = pair->as_list().items.front();
        if (first.kind() != Value::Kind::dtensor || !first.as_dtensor_node()->local().device().is_meta()) return false;
        local.as_dict().set(DictKey(key), first);
        return true;
      });
    }
    std::vector<std::pair<std::string, Tensor>> fulls;  // distribute_dim0_only: each key's full tensor
    if (flaw_ == UtilityFlaw::distribute_dim0_only) {
      for (const std::string& key : rest) {
        const Value* pair = local.as_dict().find(DictKey(key));
        if (pair != nullptr && pair->kind() == Value::Kind::list && pair->as_list().items.size() == 2 &&
            pair->as_list().items[1].is_tensor())
          fulls.emplace_back(key, pair->as_list().items[1].as_tensor());
      }
    }
    inner_->distribute_tensors(local, rest);
    for (const auto& [key, full] : fulls) {  // the block sliced along dimension 0 only
      const Value* v = local.as_dict().find(DictKey(key));
      if (v == nullptr || v->kind() != Value::Kind::dtensor || v->as_dtensor_node()->local().numel() == 0) continue;
      const DTensor& dt = *v->as_dtensor_node();
      const LocalShard shard = dt.local_shard();
      Tensor block = full;
      for (std::size_t d = 0; d < shard.shape.size(); ++d) {
        const std::int64_t offset = d == 0 ? std::min(shard.offset[0], full.sizes()[0]) : 0;
        block = block.narrow(static_cast<std::int64_t>(d), offset, shard.shape[d]);
      }
      Tensor(dt.local()).copy_(block);
    }
  }
  void distribute_state_dict(const Value& full, Value& local, Device device) override {
    if (flaw_ == UtilityFlaw::distribute_aliases_full) {
      inner_->distribute_state_dict(full, local, device);
      std::vector<std::pair<DictKey, Value>> aliased;  // the full dict's own tensor where it fits
      for (const auto& [k, v] : local.as_dict().entries()) {
        const Value* f = full.as_dict().find(k);
        if (f != nullptr && f->is_tensor() && v.is_tensor() && f->as_tensor().device() == v.as_tensor().device())
          aliased.emplace_back(k, *f);
      }
      for (auto& [k, v] : aliased) local.as_dict().set(k, v);
      return;
    }
    if (flaw_ != UtilityFlaw::distribute_adds_no_keys) {
      inner_->distribute_state_dict(full, local, device);
      return;
    }
    std::vector<DictKey> had;  // keys the full dict has and the local one lacks are not added
    for (const auto& [k, v] : local.as_dict().entries()) had.push_back(k);
    inner_->distribute_state_dict(full, local, device);
    auto kept = std::make_shared<Dict>();
    for (const auto& [k, v] : local.as_dict().entries()) {
      if (std::find(had.begin(), had.end(), k) != had.end()) kept->set(k, v);
    }
    local = Value(kept);
  }
  void broadcast_state_dict(const Value& full, Value& local, dist::Communicator& world, bool strict, bool cpu_offload,
                            Device device) override {
    inner_->broadcast_state_dict(
        flaw_ == UtilityFlaw::bcast_drops_opaque && world.rank() == 0 ? without_opaque_entries(full) : full, local,
        world, strict && flaw_ != UtilityFlaw::strict_ignored, cpu_offload, device);
    if (flaw_ == UtilityFlaw::broadcast_copies_on_root && world.rank() == 0) copy_top_level_storages(local);
    if (flaw_ == UtilityFlaw::broadcast_splits_nodes && world.rank() != 0 && local.kind() == Value::Kind::dict) {
      std::vector<std::pair<DictKey, Value>> split;  // every list inside a dict entry becomes a list of its own
      for (const auto& [k, v] : local.as_dict().entries()) {
        if (v.kind() != Value::Kind::dict) continue;
        auto d = std::make_shared<Dict>();
        for (const auto& [ik, iv] : v.as_dict().entries())
          d->set(ik, iv.kind() == Value::Kind::list ? Value::list(iv.as_list().items) : iv);
        split.emplace_back(k, Value(d));
      }
      for (auto& [k, v] : split) local.as_dict().set(k, v);
    }
    if (flaw_ == UtilityFlaw::broadcast_drops_inner_attrs && world.rank() != 0 && local.kind() == Value::Kind::dict) {
      std::vector<std::pair<DictKey, Value>> split;  // a tensor inside a dict entry loses its attributes
      for (const auto& [k, v] : local.as_dict().entries()) {
        if (v.kind() != Value::Kind::dict) continue;
        auto d = std::make_shared<Dict>();
        for (const auto& [ik, iv] : v.as_dict().entries())
          d->set(ik, iv.is_tensor() ? Value(iv.as_tensor().on_storage(iv.as_tensor().storage())) : iv);
        split.emplace_back(k, Value(d));
      }
      for (auto& [k, v] : split) local.as_dict().set(k, v);
    }
    if (flaw_ != UtilityFlaw::broadcast_loses_sharing || world.rank() == 0 || local.kind() != Value::Kind::dict) return;
    std::map<const void*, int> seen;  // a storage reached again gets a copy of its own
    std::vector<std::pair<DictKey, Value>> copies;
    for (const auto& [k, v] : local.as_dict().entries()) {
      if (!v.is_tensor() || !v.as_tensor().storage().defined()) continue;
      const Tensor& t = v.as_tensor();
      if (seen[t.storage().identity()]++ == 0) continue;
      Storage own = Storage::allocate(t.storage().nbytes(), t.storage().device());
      copy_bytes(own, 0, t.storage(), 0, t.storage().nbytes());
      copies.emplace_back(k, Value(t.on_storage(own)));
    }
    for (auto& [k, v] : copies) local.as_dict().set(k, v);
  }
  ~MutantUtilities() override {
    for (std::thread& t : late_copies_) t.join();
  }

 private:
  std::unique_ptr<StateDictUtilitiesUnderTest> inner_;
  UtilityFlaw flaw_;
  std::vector<Value> created_;            // created_kept: every state dict create_cpu_state_dict made
  std::vector<std::thread> late_copies_;  // copy_defers_cpu_copies: the copies still to land
};

class UtilityMutant final : public Implementation {
 public:
  explicit UtilityMutant(UtilityFlaw flaw) : flaw_(flaw), reference_(make_reference_implementation()) {}
  std::string name() const override { return "utility-mutant"; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override { return reference_->capabilities(); }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& c) override { return reference_->make_stager(c); }
  std::unique_ptr<StateDictUtilitiesUnderTest> make_utilities() override {
    return std::make_unique<MutantUtilities>(reference_->make_utilities(), flaw_);
  }

 private:
  UtilityFlaw flaw_;
  std::unique_ptr<Implementation> reference_;
};

void expect_utility_flaw_caught(UtilityFlaw flaw, const std::vector<std::string>& must_fail,
                                const std::string& control) {
  UtilityMutant impl(flaw);
  for (const std::string& id : must_fail) {
    EXPECT_EQ(case_outcome(impl, id), Outcome::fail)
        << "utility flaw " << static_cast<int>(flaw) << " not caught by " << id;
  }
  EXPECT_EQ(case_outcome(impl, control), Outcome::pass)
      << "utility flaw " << static_cast<int>(flaw) << " should pass " << control;
}

TEST(Mutants, UtilitiesIgnoringRanksOnly) {
  expect_utility_flaw_caught(UtilityFlaw::ignores_ranks_only,
                             {"utils.gather_cpu_offload_ranks_only.cpu.default.ws4",
                              "utils.offload_ranks_only.cpu.default.ws4", "utils.ranks_only_nested.cpu.default.ws4",
                              "utils.unlisted_rank_levels.cpu.default", "utils.gather_subgroup.cpu.default.ws4"},
                             "utils.gather_dtensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesGatheringOnlyTheLocalShard) {
  expect_utility_flaw_caught(UtilityFlaw::gathers_local_only,
                             {"utils.gather_dtensor.cpu.default.ws2", "utils.gather.uneven_rows.cpu.default.ws4",
                              "utils.gather.mesh2d_shard0_shard1.cpu.default.ws4",
                              "utils.gather_sharded_tensor.cpu.default.ws2", "utils.complicated_dict.cpu.default.ws4"},
                             "utils.offload_ranks_only.cpu.default.ws4");
}

TEST(Mutants, UtilitiesMakingContainersPlain) {
  expect_utility_flaw_caught(UtilityFlaw::plain_containers, {"utils.container_types_kept.cpu.default"},
                             "utils.offload_aliases_cpu_inputs.cpu.default");
}

TEST(Mutants, UtilitiesSimilarityWithSideEffect) {
  expect_utility_flaw_caught(UtilityFlaw::similarity_writes, {"utils.similarity_no_side_effect.cpu.default"},
                             "utils.copy_companion_mismatch.cpu.default");
}

TEST(Mutants, UtilitiesCreatingAliasesInsteadOfBuffers) {
  expect_utility_flaw_caught(
      UtilityFlaw::create_aliases,
      {"utils.create_cpu_state_dict.cpu.pin0_share0.ws2", "utils.create_cpu_state_dict.cpu.pin1_share1.ws2",
       "utils.cpu_offload_for_dtensor.cpu.default.ws2", "utils.create_cpu_state_dict_edge_leaves.cpu.pin1_share1",
       "utils.create_cpu_state_dict_views.cpu.default"},
      "utils.gather_dtensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesPinningAndSharingWhatWasNotAskedFor) {
  expect_utility_flaw_caught(
      UtilityFlaw::create_always_pinned_shared,
      {"utils.create_cpu_state_dict.cpu.pin0_share0.ws2", "utils.create_cpu_state_dict.cpu.pin1_share0.ws2",
       "utils.create_cpu_state_dict.cpu.pin0_share1.ws2"},
      "utils.create_cpu_state_dict.cpu.pin1_share1.ws2");
}

TEST(Mutants, UtilitiesCopyingWithoutCompanionChecks) {
  expect_utility_flaw_caught(UtilityFlaw::copy_unchecked, {"utils.copy_companion_mismatch.cpu.default"},
                             "utils.similarity_no_side_effect.cpu.default");
}

TEST(Mutants, UtilitiesCopyingNoTensorInsideLists) {
  expect_utility_flaw_caught(UtilityFlaw::copy_skips_lists, {"utils.copy_companion_mismatch.cpu.default"},
                             "utils.similarity_no_side_effect.cpu.default");
}

TEST(Mutants, UtilitiesCreatingWithoutSharedMemory) {
  expect_utility_flaw_caught(UtilityFlaw::create_never_shares,
                             {"utils.create_cpu_state_dict_edge_leaves.cpu.pin1_share1"},
                             "utils.similarity_no_side_effect.cpu.default");
}

TEST(Mutants, UtilitiesOffloadingCopiesOfCpuInputs) {
  expect_utility_flaw_caught(UtilityFlaw::offload_copies_cpu_inputs,
                             {"utils.offload_aliases_cpu_inputs.cpu.default", "utils.offload_dtensor.cpu.default"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesComparingValuesForSimilarity) {
  expect_utility_flaw_caught(UtilityFlaw::similarity_by_value, {"utils.similarity_compares.cpu.default"},
                             "utils.offload_aliases_cpu_inputs.cpu.default");
}

TEST(Mutants, UtilitiesIgnoringTypeCheck) {
  expect_utility_flaw_caught(UtilityFlaw::type_check_ignored, {"utils.type_check.cpu.default"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesBroadcastIgnoringStrict) {
  expect_utility_flaw_caught(UtilityFlaw::strict_ignored, {"utils.broadcast_state_dict.strict.cpu.default.ws2"},
                             "utils.broadcast_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesDistributingIntoNewDTensors) {
  expect_utility_flaw_caught(UtilityFlaw::distribute_into_new_dtensors, {"utils.distribute_tensors.cpu.default.ws2"},
                             "utils.distribute_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesKeepingMetaLocals) {
  expect_utility_flaw_caught(UtilityFlaw::meta_locals_kept, {"utils.distribute_tensors_meta.cpu.default.ws2"},
                             "utils.distribute_tensors.cpu.default.ws2");
}

TEST(Mutants, UtilitiesGatheringCopiesOfPlainTensors) {
  expect_utility_flaw_caught(UtilityFlaw::gather_copies_plain, {"utils.gather_keeps_plain_tensors.cpu.default.ws2"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesIgnoringTheGatherDevice) {
  expect_utility_flaw_caught(UtilityFlaw::device_ignored, {"utils.gather_on_device.cpu.default.ws2"},
                             "utils.gather_sharded_tensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesMovingDTensorsToTheGatherDevice) {
  expect_utility_flaw_caught(UtilityFlaw::device_for_dtensors, {"utils.gather_on_device.cpu.default.ws2"},
                             "utils.gather_sharded_tensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesGatheringPartialAsReplicate) {
  expect_utility_flaw_caught(UtilityFlaw::partial_as_replicate, {"utils.gather_partial.cpu.default.ws2"},
                             "utils.gather_dtensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesDistributingNoNewKeys) {
  expect_utility_flaw_caught(UtilityFlaw::distribute_adds_no_keys, {"utils.distribute_state_dict.cpu.default.ws2"},
                             "utils.distribute_tensors.cpu.default.ws2");
}

TEST(Mutants, UtilitiesReportingATimeoutLate) {
  expect_utility_flaw_caught(UtilityFlaw::timeout_reported_late, {"utils.rank_never_arrives.cpu.default.ws2"},
                             "utils.gather_dtensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesFlatteningWithoutDuplicateCheck) {
  expect_utility_flaw_caught(UtilityFlaw::flatten_last_key_wins, {"utils.path_helpers.cpu.default"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesNeverReleasingCreatedBuffers) {
  expect_utility_flaw_caught(
      UtilityFlaw::created_kept,
      {"utils.create_cpu_state_dict_releases.cpu.pin0_share0", "utils.create_cpu_state_dict_releases.cpu.pin1_share0",
       "utils.create_cpu_state_dict_releases.cpu.pin0_share1", "utils.create_cpu_state_dict_releases.cpu.pin1_share1"},
      "utils.create_cpu_state_dict.cpu.pin1_share1.ws2");
}

TEST(Mutants, UtilitiesRebasingShardOffsets) {
  expect_utility_flaw_caught(
      UtilityFlaw::shard_offsets_rebased,
      {"utils.create_cpu_state_dict.cpu.pin0_share0.ws2", "utils.sharded_tensor_local_shards.cpu.pin1_share1"},
      "utils.gather_dtensor.cpu.default.ws2");
}

TEST(Mutants, UtilitiesCopyingOnlyTheFirstShard) {
  expect_utility_flaw_caught(UtilityFlaw::copies_first_shard, {"utils.sharded_tensor_local_shards.cpu.pin1_share1"},
                             "utils.create_cpu_state_dict.cpu.pin0_share0.ws2");
}

TEST(Mutants, UtilitiesSettingElementsByAppending) {
  expect_utility_flaw_caught(UtilityFlaw::set_element_appends, {"utils.path_helpers.cpu.default"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesSimilarityIgnoringDTensors) {
  expect_utility_flaw_caught(UtilityFlaw::similarity_ignores_dtensors, {"utils.similarity_compares.cpu.default"},
                             "utils.copy_companion_mismatch.cpu.default");
}

TEST(Mutants, UtilitiesDeferringNonBlockingCpuCopies) {
  expect_utility_flaw_caught(UtilityFlaw::copy_defers_cpu_copies, {"utils.copy_companion_mismatch.cpu.default"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesBroadcastLosingStorageSharing) {
  expect_utility_flaw_caught(
      UtilityFlaw::broadcast_loses_sharing,
      {"utils.broadcast_state_dict.cpu.default.ws2", "utils.broadcast_state_dict.strict.cpu.default.ws4"},
      "utils.distribute_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesSettingElementsThroughOtherKinds) {
  expect_utility_flaw_caught(UtilityFlaw::set_element_overwrites, {"utils.path_helpers.cpu.default"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesGatheringInnerDimensionsOutOfOrder) {
  expect_utility_flaw_caught(UtilityFlaw::gather_swaps_inner_blocks, {"utils.gather.inner_dim.cpu.default.ws2"},
                             "utils.gather.uneven_columns.cpu.default.ws4");
}

TEST(Mutants, UtilitiesCreatingUninitialisedBuffers) {
  expect_utility_flaw_caught(UtilityFlaw::create_uninitialised,
                             {"utils.create_cpu_state_dict_edge_leaves.cpu.pin1_share1"},
                             "utils.create_cpu_state_dict.cpu.pin0_share0.ws2");
}

TEST(Mutants, UtilitiesLosingEmptySequencesInPaths) {
  expect_utility_flaw_caught(UtilityFlaw::paths_drop_empty_sequences, {"utils.path_helpers.cpu.default"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesCreatingBuffersWithTheSourcesStrides) {
  expect_utility_flaw_caught(UtilityFlaw::create_keeps_strides, {"utils.create_cpu_state_dict_views.cpu.default"},
                             "utils.create_cpu_state_dict.cpu.pin0_share0.ws2");
}

TEST(Mutants, UtilitiesDistributingTheFullDictsOwnTensors) {
  expect_utility_flaw_caught(UtilityFlaw::distribute_aliases_full, {"utils.distribute_state_dict.cpu.default.ws2"},
                             "utils.broadcast_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesBroadcastCopyingOnRankZero) {
  expect_utility_flaw_caught(UtilityFlaw::broadcast_copies_on_root, {"utils.broadcast_state_dict.cpu.default.ws2"},
                             "utils.distribute_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesCompanionErrorsNamingTheTopKey) {
  expect_utility_flaw_caught(UtilityFlaw::copy_error_names_top_key, {"utils.copy_companion_mismatch.cpu.default"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesBroadcastSplittingSharedNodes) {
  expect_utility_flaw_caught(
      UtilityFlaw::broadcast_splits_nodes,
      {"utils.broadcast_state_dict.cpu.default.ws2", "utils.broadcast_state_dict.strict.cpu.default.ws4"},
      "utils.distribute_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesBroadcastDroppingInnerAttributes) {
  expect_utility_flaw_caught(UtilityFlaw::broadcast_drops_inner_attrs, {"utils.broadcast_state_dict.cpu.default.ws2"},
                             "utils.distribute_state_dict.cpu.default.ws2");
}

TEST(Mutants, UtilitiesUnflattenAppendingListLeaves) {
  expect_utility_flaw_caught(UtilityFlaw::unflatten_appends, {"utils.path_helpers.cpu.default"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesDistributingAlongDimZeroOnly) {
  expect_utility_flaw_caught(
      UtilityFlaw::distribute_dim0_only,
      {"utils.distribute_tensors_meta.cpu.default.ws2", "utils.distribute_tensors_meta.cpu.default.ws4"},
      "utils.distribute_tensors.cpu.default.ws2");
}

TEST(Mutants, UtilitiesTypeCheckLettingOpaqueLeavesThrough) {
  expect_utility_flaw_caught(UtilityFlaw::type_check_misses_opaque,
                             {"utils.type_check.cpu.default", "utils.type_check.gather.cpu.default.ws2"},
                             "utils.path_helpers.cpu.default");
}

TEST(Mutants, UtilitiesGatherTypeCheckOnRankZeroOnly) {
  expect_utility_flaw_caught(UtilityFlaw::gather_type_check_rank0, {"utils.type_check.gather.cpu.default.ws2"},
                             "utils.type_check.cpu.default");
}

TEST(Mutants, UtilitiesSimilarityIgnoringShardDtypes) {
  expect_utility_flaw_caught(UtilityFlaw::sim_sharded_ignores_dtype,
                             {"utils.sharded_tensor_local_shards.cpu.pin1_share1"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesGatheringFloat64ThroughFloat32) {
  expect_utility_flaw_caught(UtilityFlaw::gather_f64_through_f32,
                             {"utils.gather.uneven_rows.cpu.default.ws4", "utils.gather.replicate.cpu.default.ws2"},
                             "utils.gather_partial.cpu.default.ws2");
}

TEST(Mutants, UtilitiesGatheringTuplesAsLists) {
  expect_utility_flaw_caught(UtilityFlaw::gather_tuples_as_lists, {"utils.ranks_only_nested.cpu.default.ws4"},
                             "utils.gather_keeps_plain_tensors.cpu.default.ws2");
}

TEST(Mutants, UtilitiesCreateSharingObjectLeaves) {
  expect_utility_flaw_caught(UtilityFlaw::create_shares_objects,
                             {"utils.create_cpu_state_dict_edge_leaves.cpu.pin1_share1"},
                             "utils.similarity_compares.cpu.default");
}

TEST(Mutants, UtilitiesBroadcastDroppingOpaqueLeaves) {
  expect_utility_flaw_caught(UtilityFlaw::bcast_drops_opaque, {"utils.broadcast_state_dict.unpackable.cpu.default.ws2"},
                             "utils.broadcast_state_dict.cpu.default.ws2");
}

}  // namespace
}  // namespace stagekit::conformance
