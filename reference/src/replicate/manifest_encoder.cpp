// manifest_encoder.cpp — the manifest writer: one pass over the tree, node identities and storage
// identities memoised, back-references for nodes reached again, cycles refused.
#include "manifest_encoder.h"

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "manifest_format.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/state_path.h"

namespace stagekit::replicate::detail {
namespace {

class ManifestEncoder {
 public:
  explicit ManifestEncoder(const PackOptions& options) : options_(options) {}

  PackedStateDict run(const Value& root) {
    node(root, 0);
    std::vector<std::uint64_t> sizes;
    sizes.reserve(storages_.size());
    for (const Storage& s : storages_) sizes.push_back(s.nbytes());
    ByteWriter header;
    write_manifest_header(header, sizes);
    PackedStateDict packed;
    packed.manifest = std::move(header.bytes());
    packed.manifest.insert(packed.manifest.end(), body_.bytes().begin(), body_.bytes().end());
    packed.storages = std::move(storages_);
    return packed;
  }

 private:
  void node(const Value& v, int depth) {
    check_depth(depth);
    switch (v.kind()) {
      case Value::Kind::none: tag(NodeTag::none); return;
      case Value::Kind::boolean:
        tag(NodeTag::boolean);
        body_.u8(v.as_bool() ? 1 : 0);
        return;
      case Value::Kind::integer:
        tag(NodeTag::integer);
        body_.i64(v.as_int());
        return;
      case Value::Kind::floating:
        tag(NodeTag::floating);
        body_.f64(v.as_double());
        return;
      case Value::Kind::string:
        tag(NodeTag::string);
        body_.text(v.as_string());
        return;
      case Value::Kind::bytes: {
        const auto& data = v.as_bytes().data;
        tag(NodeTag::bytes);
        body_.u64(data.size());
        body_.raw(data.data(), data.size());
        return;
      }
      case Value::Kind::tensor: tensor(v.as_tensor(), depth); return;
      case Value::Kind::list: sequence(v, NodeTag::list, v.as_list().items, depth); return;
      case Value::Kind::tuple:
        if (v.as_tuple().is_named()) {
          named_tuple(v, depth);
        } else {
          sequence(v, NodeTag::tuple, v.as_tuple().items(), depth);
        }
        return;
      case Value::Kind::set: set(v, depth); return;
      case Value::Kind::dict: dict(v, depth); return;
      case Value::Kind::object: object(v, depth); return;
      case Value::Kind::dtensor: dtensor(v, depth); return;
      case Value::Kind::sharded_tensor: sharded_tensor(v, depth); return;
      case Value::Kind::opaque:
        throw Unsupported(fmt::format("cannot pack a value of opaque type '{}': stagekit does not know how to copy it",
                                      v.as_opaque().type_name()),
                          path_.str());
    }
    throw InternalError(fmt::format("unknown value kind {}", static_cast<int>(v.kind())), path_.str());
  }

  void check_depth(int depth) const {
    if (depth > kMaxNesting) {
      throw InvalidArgument(fmt::format("the state dict is nested deeper than {} levels", kMaxNesting), path_.str());
    }
  }

  void tag(NodeTag t, bool referable = false) {
    body_.u8(static_cast<std::uint8_t>(static_cast<std::uint8_t>(t) | (referable ? kReferable : 0)));
  }

  // Starts a refcounted node. A node written before becomes a back-reference (and false is
  // returned); a node still being written is a cycle. A node with other handles is written
  // referable and tracked until end_node().
  bool begin_node(const void* id, long use_count, NodeTag t) {
    if (use_count <= 1) {
      tag(t);
      return true;
    }
    if (const auto it = index_of_.find(id); it != index_of_.end()) {
      if (const auto active = active_.find(id); active != active_.end()) {
        throw InvalidArgument(fmt::format("cycle: this value contains itself (it is also reached at {}); "
                                          "state dicts must not be cyclic",
                                          path_.str(active->second)),
                              path_.str());
      }
      tag(NodeTag::reference);
      body_.u64(it->second);
      return false;
    }
    index_of_.emplace(id, next_index_++);
    active_.emplace(id, path_.depth());
    tag(t, /*referable=*/true);
    return true;
  }
  void end_node(const void* id, long use_count) {
    if (use_count > 1) active_.erase(id);
  }

  std::uint64_t storage_id(const Storage& storage) {
    if (!storage.defined()) return kNoStorage;
    const auto [it, inserted] = storage_ids_.try_emplace(storage.identity(), storages_.size());
    if (inserted) storages_.push_back(storage);
    return it->second;
  }

  void tensor(const Tensor& t, int depth) {
    check_depth(depth);
    if (!t.defined()) throw InvalidArgument("an undefined tensor cannot be packed", path_.str());
    if (t.device().is_meta()) {
      throw InvalidArgument("a tensor on the meta device cannot be packed: it has no data", path_.str());
    }
    if (options_.refuse_parameters && t.is_parameter()) {
      throw InvalidArgument(
          "a parameter (nn.Parameter) cannot be replicated: only plain tensors can (stage the state "
          "dict first, or pass the parameters' plain tensors)",
          path_.str());
    }
    const long uses = t.use_count();
    if (!begin_node(t.identity(), uses, NodeTag::tensor)) return;
    body_.u8(static_cast<std::uint8_t>(t.dtype()));
    body_.u64(t.sizes().size());
    body_.raw(t.sizes().data(), t.sizes().size_bytes());
    body_.raw(t.strides().data(), t.strides().size_bytes());
    body_.i64(t.storage_offset());
    body_.u64(storage_id(t.storage()));
    body_.u64(t.attrs().size());
    for (const auto& [name, value] : t.attrs()) {
      body_.text(name);
      PathScope scope(path_, std::string_view(name));
      node(value, depth + 1);
    }
    end_node(t.identity(), uses);
  }

  void sequence(const Value& v, NodeTag t, const std::vector<Value>& items, int depth) {
    const long uses = v.use_count();
    if (!begin_node(v.identity(), uses, t)) return;
    body_.u64(items.size());
    for (std::size_t i = 0; i < items.size(); ++i) {
      PathScope scope(path_, i);
      node(items[i], depth + 1);
    }
    end_node(v.identity(), uses);
  }

  void named_tuple(const Value& v, int depth) {
    const long uses = v.use_count();
    if (!begin_node(v.identity(), uses, NodeTag::named_tuple)) return;
    const Tuple& t = v.as_tuple();
    body_.text(t.type_name());
    body_.u64(t.items().size());
    for (std::size_t i = 0; i < t.items().size(); ++i) {
      body_.text(t.field_names()[i]);
      PathScope scope(path_, i);
      node(t.items()[i], depth + 1);
    }
    end_node(v.identity(), uses);
  }

  void set(const Value& v, int depth) {
    const long uses = v.use_count();
    if (!begin_node(v.identity(), uses, NodeTag::set)) return;
    const Set& s = v.as_set();
    body_.u8(s.frozen() ? 1 : 0);
    body_.u64(s.items().size());
    for (std::size_t i = 0; i < s.items().size(); ++i) {
      PathScope scope(path_, i);
      node(s.items()[i], depth + 1);
    }
    end_node(v.identity(), uses);
  }

  void dict(const Value& v, int depth) {
    const long uses = v.use_count();
    const Dict& d = v.as_dict();
    const NodeTag tag = !d.default_factory().empty() ? NodeTag::default_dict
                        : d.type_name().empty()      ? NodeTag::dict
                                                     : NodeTag::typed_dict;
    if (!begin_node(v.identity(), uses, tag)) return;
    if (tag != NodeTag::dict) body_.text(d.type_name());
    if (tag == NodeTag::default_dict) body_.text(d.default_factory());
    const auto& entries = d.entries();
    body_.u64(entries.size());
    for (const auto& [key, value] : entries) {
      if (const auto* s = std::get_if<std::string>(&key)) {
        body_.u8(static_cast<std::uint8_t>(KeyKind::string));
        body_.text(*s);
      } else {
        body_.u8(static_cast<std::uint8_t>(KeyKind::integer));
        body_.i64(std::get<std::int64_t>(key));
      }
      PathScope scope(path_, key);
      node(value, depth + 1);
    }
    end_node(v.identity(), uses);
  }

  void object(const Value& v, int depth) {
    const long uses = v.use_count();
    const Object& o = v.as_object();
    if (!begin_node(v.identity(), uses, o.slots() ? NodeTag::slots_object : NodeTag::object)) return;
    body_.text(o.type_name());
    if (!o.slots()) body_.u8(o.frozen() ? 1 : 0);
    body_.u64(o.fields().size());
    for (const auto& [name, value] : o.fields()) {
      body_.text(name);
      PathScope scope(path_, std::string_view(name));
      node(value, depth + 1);
    }
    end_node(v.identity(), uses);
  }

  void dtensor(const Value& v, int depth) {
    const long uses = v.use_count();
    if (!begin_node(v.identity(), uses, NodeTag::dtensor)) return;
    const DTensor& d = *v.as_dtensor_node();
    const DTensorSpec& spec = d.spec();
    body_.u8(static_cast<std::uint8_t>(spec.mesh.device_type()));
    body_.i64_list(spec.mesh.shape());
    body_.u64(spec.mesh.ranks().size());
    for (int rank : spec.mesh.ranks()) body_.i32(rank);
    body_.u64(spec.placements.size());
    for (const Placement& p : spec.placements) {
      body_.u8(static_cast<std::uint8_t>(p.kind));
      body_.i64(p.dim);
    }
    body_.i64_list(spec.global_shape);
    body_.i64_list(spec.global_strides);
    body_.i32(d.rank());
    tensor(d.local(), depth + 1);
    end_node(v.identity(), uses);
  }

  void shard_metadata(const ShardMetadata& m) {
    body_.i64_list(m.offsets);
    body_.i64_list(m.sizes);
    body_.i32(m.placement_rank);
    body_.u8(static_cast<std::uint8_t>(m.placement_device.type));
    body_.i32(m.placement_device.index);
  }

  void sharded_tensor(const Value& v, int depth) {
    const long uses = v.use_count();
    if (!begin_node(v.identity(), uses, NodeTag::sharded_tensor)) return;
    const ShardedTensor& s = *v.as_sharded_tensor_node();
    body_.i32(s.rank());
    body_.u8(static_cast<std::uint8_t>(s.metadata().dtype));
    body_.i64_list(s.metadata().size);
    body_.u64(s.metadata().shards.size());
    for (const ShardMetadata& m : s.metadata().shards) shard_metadata(m);
    body_.u64(s.local_shards().size());
    for (std::size_t i = 0; i < s.local_shards().size(); ++i) {
      const LocalTensorShard& shard = s.local_shards()[i];
      shard_metadata(shard.metadata);
      PathScope scope(path_, i);
      tensor(shard.tensor, depth + 1);
    }
    end_node(v.identity(), uses);
  }

  const PackOptions& options_;
  ByteWriter body_;
  PathStack path_;
  absl::flat_hash_map<const void*, std::uint64_t> index_of_;  // referable nodes written or being written
  absl::flat_hash_map<const void*, std::size_t> active_;      // referable nodes being written -> path depth
  std::uint64_t next_index_ = 0;
  absl::flat_hash_map<const void*, std::uint64_t> storage_ids_;
  std::vector<Storage> storages_;
};

}  // namespace

PackedStateDict encode_manifest(const Value& root, const PackOptions& options) {
  return ManifestEncoder(options).run(root);
}

}  // namespace stagekit::replicate::detail
