// manifest_decoder.cpp — the manifest reader: bounds-checked, depth-limited, back-references only to
// complete earlier nodes, every constructor's InvalidArgument turned into a CorruptionError.
#include "manifest_decoder.h"

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "manifest_format.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/state_path.h"

namespace stagekit::replicate::detail {
namespace {

// Smallest encodings, to bound counts by the bytes left: a node is at least its tag; a dict entry
// a key kind, an 8-byte key or length, and a node; a field or attribute an 8-byte length and a node;
// shard metadata two empty lists, a rank, a device type and a device index. A count checked this
// way is small enough to reserve exactly: a few dozen bytes of tree per byte of manifest at most.
constexpr std::uint64_t kMinNodeBytes = 1;
constexpr std::uint64_t kMinEntryBytes = 1 + 8 + kMinNodeBytes;
constexpr std::uint64_t kMinFieldBytes = 8 + kMinNodeBytes;
constexpr std::uint64_t kMinShardMetadataBytes = 8 + 8 + 4 + 1 + 4;

std::string_view tag_name(NodeTag t) {
  switch (t) {
    case NodeTag::none: return "none";
    case NodeTag::boolean: return "bool";
    case NodeTag::integer: return "int";
    case NodeTag::floating: return "float";
    case NodeTag::string: return "string";
    case NodeTag::bytes: return "bytes";
    case NodeTag::tensor: return "tensor";
    case NodeTag::list: return "list";
    case NodeTag::tuple: return "tuple";
    case NodeTag::dict: return "dict";
    case NodeTag::object: return "object";
    case NodeTag::dtensor: return "dtensor";
    case NodeTag::sharded_tensor: return "sharded_tensor";
    case NodeTag::reference: return "reference";
    case NodeTag::typed_dict: return "typed_dict";
    case NodeTag::named_tuple: return "named_tuple";
    case NodeTag::set: return "set";
    case NodeTag::slots_object: return "slots_object";
    case NodeTag::default_dict: return "default_dict";
  }
  return "?";
}

bool is_refcounted(NodeTag t) {
  return (t >= NodeTag::tensor && t <= NodeTag::sharded_tensor) ||
         (t >= NodeTag::typed_dict && t <= NodeTag::default_dict);
}

class ManifestDecoder {
 public:
  ManifestDecoder(std::span<const std::byte> manifest, std::span<const Storage> storages, const UnpackOptions& options)
      : in_(manifest, "manifest"), storages_(storages), options_(options) {}

  Value run() {
    const std::vector<std::uint64_t> sizes = read_manifest_header(in_);
    check_storages(sizes);
    Value root = node(0);
    if (!in_.at_end()) in_.fail(fmt::format("{} byte(s) after the root node", in_.remaining()));
    return root;
  }

 private:
  void check_storages(const std::vector<std::uint64_t>& sizes) const {
    if (storages_.size() != sizes.size()) {
      throw InvalidArgument(fmt::format("unpack_state_dict: the manifest names {} storage(s) but {} were given",
                                        sizes.size(), storages_.size()));
    }
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      if (storages_[i].nbytes() != sizes[i]) {
        throw InvalidArgument(fmt::format("unpack_state_dict: storage {} holds {} byte(s) but the manifest says {}", i,
                                          storages_[i].nbytes(), sizes[i]));
      }
    }
  }

  // One node; a CorruptionError without a path is given the path of the innermost node reached.
  Value node(int depth) {
    try {
      return node_unnamed(depth);
    } catch (const CorruptionError& e) {
      if (!e.path().empty()) throw;
      throw CorruptionError(e.detail(), path_.str());
    }
  }

  Value node_unnamed(int depth) {
    const std::size_t at = in_.position();
    if (depth > kMaxNesting) in_.fail(fmt::format("nodes nested deeper than {} levels", kMaxNesting));
    const std::uint8_t byte = in_.u8("a node tag");
    const bool referable = (byte & kReferable) != 0;
    const std::uint8_t kind = byte & static_cast<std::uint8_t>(~kReferable);
    if (kind > kLastNodeTag) in_.fail_at(at, fmt::format("unknown node tag {:#04x}", byte));
    const auto tag = static_cast<NodeTag>(kind);
    if (referable && !is_refcounted(tag)) in_.fail_at(at, fmt::format("a {} node cannot be referable", tag_name(tag)));
    if (tag == NodeTag::reference) return reference(at);
    if (!referable) return body(tag, at, depth);
    const std::size_t slot = nodes_.size();
    nodes_.emplace_back();
    complete_.push_back(false);
    Value v = body(tag, at, depth);
    nodes_[slot] = v;
    complete_[slot] = true;
    return v;
  }

  Value reference(std::size_t at) {
    const std::uint64_t index = in_.u64("a node index");
    if (index >= nodes_.size()) {
      in_.fail_at(
          at, fmt::format("back-reference to node {}, but only {} referable node(s) precede it", index, nodes_.size()));
    }
    if (!complete_[index])
      in_.fail_at(at, fmt::format("back-reference to node {}, which contains it (a cycle)", index));
    return nodes_[index];
  }

  Value body(NodeTag tag, std::size_t at, int depth) {
    switch (tag) {
      case NodeTag::none: return Value();
      case NodeTag::boolean: return Value(in_.boolean("a bool"));
      case NodeTag::integer: return Value(in_.i64("an int"));
      case NodeTag::floating: return Value(in_.f64("a float"));
      case NodeTag::string: return Value(in_.text("a string"));
      case NodeTag::bytes: {
        const auto data = in_.take(in_.count("a bytes length", 1), "bytes");
        return Value(Bytes{std::vector<std::byte>(data.begin(), data.end())});
      }
      case NodeTag::tensor: return Value(tensor(at, depth));
      case NodeTag::list:
      case NodeTag::tuple: {
        std::vector<Value> items = sequence(depth);
        return tag == NodeTag::list ? Value::list(std::move(items)) : Value::tuple(std::move(items));
      }
      case NodeTag::dict: return dict(at, depth);
      case NodeTag::typed_dict: {
        std::string type_name = in_.text("the dict type name");
        Value d = dict(at, depth);
        d.as_dict().set_type_name(std::move(type_name));
        return d;
      }
      case NodeTag::default_dict: {
        std::string type_name = in_.text("the dict type name");
        std::string factory = in_.text("the default factory's name");
        Value d = dict(at, depth);
        d.as_dict().set_type_name(std::move(type_name));
        d.as_dict().set_default_factory(std::move(factory));
        return d;
      }
      case NodeTag::named_tuple: return named_tuple(at, depth);
      case NodeTag::set: return set(at, depth);
      case NodeTag::object: return object(at, depth, /*slots=*/false);
      case NodeTag::slots_object: return object(at, depth, /*slots=*/true);
      case NodeTag::dtensor: return dtensor(at, depth);
      case NodeTag::sharded_tensor: return sharded_tensor(at, depth);
      case NodeTag::reference: break;
    }
    in_.fail_at(at, fmt::format("unexpected node tag {}", static_cast<int>(tag)));
  }

  DType dtype(std::string_view field) {
    const std::size_t at = in_.position();
    const std::uint8_t v = in_.u8(field);
    if (v >= kAllDTypes.size()) in_.fail_at(at, fmt::format("{} {} is not a dtype", field, v));
    return static_cast<DType>(v);
  }

  DeviceType device_type(std::string_view field) {
    const std::size_t at = in_.position();
    const std::uint8_t v = in_.u8(field);
    if (v > static_cast<std::uint8_t>(DeviceType::cuda))
      in_.fail_at(at, fmt::format("{} {} is not a device type", field, v));
    return static_cast<DeviceType>(v);
  }

  // A list of sizes or offsets, each in [0, kMaxExtent).
  IntList extents(std::string_view field) {
    const std::size_t at = in_.position();
    IntList values = in_.i64_list(field);
    for (std::int64_t v : values) {
      if (v < 0 || v >= kMaxExtent) in_.fail_at(at, fmt::format("{} holds {}, outside [0, 2^62)", field, v));
    }
    return values;
  }

  Tensor tensor(std::size_t at, int depth) {
    const DType type = dtype("the tensor dtype");
    const std::uint64_t ndim = in_.count("the tensor dimension count", 2 * sizeof(std::int64_t));
    IntList sizes(ndim);
    IntList strides(ndim);
    for (auto& s : sizes) s = in_.i64("a tensor size");
    for (auto& s : strides) s = in_.i64("a tensor stride");
    const std::int64_t offset = in_.i64("the storage offset");
    const std::size_t id_at = in_.position();
    const std::uint64_t id = in_.u64("the storage id");
    Storage storage;
    if (id != kNoStorage) {
      if (id >= storages_.size()) {
        in_.fail_at(id_at, fmt::format("storage id {} out of range ({} storage(s))", id, storages_.size()));
      }
      storage = storages_[id];
    }
    Tensor t;
    try {
      t = Tensor::from_storage(std::move(storage), type, std::move(sizes), std::move(strides), offset);
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("tensor on storage {}: {}", id, e.detail()));
    }
    const std::uint64_t n = in_.count("the attribute count", kMinFieldBytes);
    std::unordered_set<std::string> names;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t name_at = in_.position();
      std::string name = in_.text("an attribute name");
      if (!names.insert(name).second) in_.fail_at(name_at, fmt::format("attribute '{}' appears twice", name));
      PathScope scope(path_, std::string_view(name));
      Value value = node(depth + 1);
      t.set_attr(name, std::move(value));
    }
    return t;
  }

  // A tensor node (possibly a back-reference) inside a DTensor or ShardedTensor.
  Tensor tensor_node(int depth, std::string_view role) {
    const std::size_t at = in_.position();
    Value v = node(depth);
    if (!v.is_tensor()) in_.fail_at(at, fmt::format("{} is a {}, expected a tensor", role, value_kind_name(v.kind())));
    return v.as_tensor();
  }

  std::vector<Value> sequence(int depth) {
    const std::uint64_t n = in_.count("the item count", kMinNodeBytes);
    std::vector<Value> items;
    items.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      PathScope scope(path_, static_cast<std::size_t>(i));
      items.push_back(node(depth + 1));
    }
    return items;
  }

  Value dict(std::size_t at, int depth) {
    (void)at;
    const std::uint64_t n = in_.count("the entry count", kMinEntryBytes);
    auto d = std::make_shared<Dict>();
    d->reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t key_at = in_.position();
      const std::uint8_t kind = in_.u8("a key kind");
      DictKey key;
      if (kind == static_cast<std::uint8_t>(KeyKind::string)) {
        key = in_.text("a string key");
      } else if (kind == static_cast<std::uint8_t>(KeyKind::integer)) {
        key = in_.i64("an int key");
      } else {
        in_.fail_at(key_at, fmt::format("key kind {} is neither string (0) nor int (1)", kind));
      }
      if (d->contains(key)) in_.fail_at(key_at, fmt::format("key {} appears twice", dict_key_str(key)));
      PathScope scope(path_, key);
      Value value = node(depth + 1);
      d->set(key, std::move(value));
    }
    return Value(std::move(d));
  }

  Value named_tuple(std::size_t at, int depth) {
    std::string type_name = in_.text("the namedtuple type name");
    const std::uint64_t n = in_.count("the namedtuple field count", kMinFieldBytes);
    std::vector<Value> items;
    std::vector<std::string> names;
    items.reserve(n);
    names.reserve(n);
    for (std::uint64_t i = 0; i < n; ++i) {
      names.push_back(in_.text("a namedtuple field name"));
      PathScope scope(path_, static_cast<std::size_t>(i));
      items.push_back(node(depth + 1));
    }
    try {
      return Value(std::make_shared<Tuple>(std::move(items), std::move(type_name), std::move(names)));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("namedtuple: {}", e.detail()));
    }
  }

  Value set(std::size_t at, int depth) {
    const bool frozen = in_.boolean("the frozenset flag");
    std::vector<Value> items = sequence(depth);
    try {
      return Value(std::make_shared<Set>(std::move(items), frozen));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("set: {}", e.detail()));
    }
  }

  Value object(std::size_t at, int depth, bool slots) {
    std::string type_name = in_.text("the object type name");
    const bool frozen = !slots && in_.boolean("the frozen flag");
    const std::uint64_t n = in_.count("the field count", kMinFieldBytes);
    std::vector<std::pair<std::string, Value>> fields;
    fields.reserve(n);
    std::unordered_set<std::string> names;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::size_t name_at = in_.position();
      std::string name = in_.text("a field name");
      if (!names.insert(name).second) in_.fail_at(name_at, fmt::format("field '{}' appears twice", name));
      PathScope scope(path_, std::string_view(name));
      Value value = node(depth + 1);
      fields.emplace_back(name, std::move(value));
    }
    try {
      return Value(std::make_shared<Object>(std::move(type_name), std::move(fields), frozen, slots));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("object: {}", e.detail()));
    }
  }

  DeviceMesh mesh(std::size_t at) {
    const DeviceType type = device_type("the mesh device type");
    const IntList shape = in_.i64_list("the mesh shape");
    const std::uint64_t nranks = in_.count("the mesh rank count", sizeof(std::int32_t));
    std::uint64_t product = 1;
    for (std::int64_t s : shape) {
      if (s <= 0 || static_cast<std::uint64_t>(s) > nranks || product * static_cast<std::uint64_t>(s) > nranks) {
        in_.fail_at(at, fmt::format("mesh shape [{}] does not match its {} rank(s)", fmt::join(shape, ", "), nranks));
      }
      product *= static_cast<std::uint64_t>(s);
    }
    if (shape.empty() || product != nranks) {
      in_.fail_at(at, fmt::format("mesh shape [{}] does not match its {} rank(s)", fmt::join(shape, ", "), nranks));
    }
    std::vector<int> ranks(nranks);
    for (int& r : ranks) r = in_.i32("a mesh rank");
    try {
      return DeviceMesh(type, shape, std::move(ranks));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("device mesh: {}", e.detail()));
    }
  }

  Value dtensor(std::size_t at, int depth) {
    DeviceMesh device_mesh = mesh(at);
    const std::uint64_t nplacements = in_.count("the placement count", 1 + sizeof(std::int64_t));
    std::vector<Placement> placements(nplacements);
    for (Placement& p : placements) {
      const std::size_t p_at = in_.position();
      const std::uint8_t kind = in_.u8("a placement kind");
      if (kind > static_cast<std::uint8_t>(Placement::Kind::partial)) {
        in_.fail_at(p_at, fmt::format("placement kind {} is not shard, replicate or partial", kind));
      }
      p.kind = static_cast<Placement::Kind>(kind);
      p.dim = in_.i64("a placement dimension");
    }
    IntList global_shape = extents("the global shape");
    IntList global_strides = in_.i64_list("the global strides");
    const int rank = in_.i32("the DTensor rank");
    Tensor local = tensor_node(depth + 1, "the DTensor's local tensor");
    try {
      DTensorSpec spec{std::move(device_mesh), std::move(placements), std::move(global_shape),
                       std::move(global_strides)};
      spec.validate();
      return Value(std::make_shared<DTensor>(std::move(local), std::move(spec), rank));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("dtensor: {}", e.detail()));
    }
  }

  ShardMetadata shard_metadata() {
    ShardMetadata m;
    m.offsets = extents("shard offsets");
    m.sizes = extents("shard sizes");
    m.placement_rank = in_.i32("the shard placement rank");
    m.placement_device.type = device_type("the shard device type");
    m.placement_device.index = in_.i32("the shard device index");
    return m;
  }

  Value sharded_tensor(std::size_t at, int depth) {
    int rank = in_.i32("the ShardedTensor rank");
    ShardedTensorMetadata metadata;
    metadata.dtype = dtype("the ShardedTensor dtype");
    metadata.size = extents("the ShardedTensor size");
    const std::uint64_t nshards = in_.count("the shard count", kMinShardMetadataBytes);
    metadata.shards.reserve(nshards);
    for (std::uint64_t i = 0; i < nshards; ++i) metadata.shards.push_back(shard_metadata());
    const std::uint64_t nlocal = in_.count("the local shard count", kMinShardMetadataBytes + kMinNodeBytes);
    std::vector<LocalTensorShard> local;
    local.reserve(nlocal);
    for (std::uint64_t i = 0; i < nlocal; ++i) {
      ShardMetadata m = shard_metadata();
      PathScope scope(path_, static_cast<std::size_t>(i));
      Tensor t = tensor_node(depth + 1, "a local shard");
      if (options_.shard_placement_rank) {
        m.placement_rank = *options_.shard_placement_rank;
        m.placement_device = Device::cpu();
      }
      local.push_back(LocalTensorShard{std::move(t), std::move(m)});
    }
    if (options_.shard_placement_rank) rank = *options_.shard_placement_rank;
    try {
      return Value(std::make_shared<ShardedTensor>(std::move(local), std::move(metadata), rank));
    } catch (const InvalidArgument& e) {
      in_.fail_at(at, fmt::format("sharded tensor: {}", e.detail()));
    }
  }

  ByteReader in_;
  std::span<const Storage> storages_;
  const UnpackOptions& options_;
  std::vector<Value> nodes_;    // referable nodes, by index
  std::vector<bool> complete_;  // whether each referable node has been built (false: an ancestor)
  PathStack path_;
};

}  // namespace

Value decode_manifest(std::span<const std::byte> manifest, std::span<const Storage> storages,
                      const UnpackOptions& options) {
  return ManifestDecoder(manifest, storages, options).run();
}

}  // namespace stagekit::replicate::detail
