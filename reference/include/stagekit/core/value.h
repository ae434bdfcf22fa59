// stagekit/core/value.h — Value: one node of a state-dict tree.
//
// A state dict is a tree (really a DAG) of Values. Leaves are none, bool, int, float, string,
// bytes, tensor, and the distributed tensor kinds (DTensor in stagekit/core/dtensor.h, ShardedTensor
// in stagekit/core/sharded_tensor.h, both part of the core value model); containers are list, tuple,
// dict (ordered; keys are strings or integers), set and object. `opaque` stands for a leaf stagekit
// cannot copy (a lock, a file handle): staging one is an error.
//
// The container kinds cover what a Python state dict holds:
//   * dict: a plain dict, or a dict subclass named by its Python class (type_name(), e.g.
//     "collections.OrderedDict"; empty for a plain dict);
//   * tuple: a plain tuple, or a namedtuple (a type name and one field name per item);
//   * set: a set or a frozenset of hashable plain values (none, bool, int, float, string, bytes and
//     tuples of those), each item once;
//   * object: a dataclass (a type name, ordered fields, a frozen flag) or an object of a class with
//     `__slots__` (slots(): the fields are its slots, never frozen).
// Every copy of a container (staging, replication, the state-dict utilities) keeps its kind and its
// type information.
//
// Identity: scalars and strings are plain values. Tensors, lists, tuples, dicts, sets, objects and the
// other node kinds are refcounted nodes: copying a Value shares the node, so the same node can appear
// twice in a tree (identity() tells), exactly like a Python object referenced twice. Lists, dicts,
// sets and non-frozen objects are mutable through any handle; tuples, frozensets and frozen objects
// are not.
//
// Invariants: a Value's kind never changes; dict keys are unique; object field names are unique; a
// namedtuple has one unique field name per item; set items are hashable and unique.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "stagekit/core/tensor.h"

namespace stagekit {

class List;
class Tuple;
class Dict;
class Object;
class Set;
class Opaque;
class DTensor;        // distributed tensors: stagekit/core/dtensor.h
class ShardedTensor;  // legacy sharded tensors: stagekit/core/sharded_tensor.h

struct Bytes {
  std::vector<std::byte> data;
  friend bool operator==(const Bytes&, const Bytes&) = default;
};

using DictKey = std::variant<std::string, std::int64_t>;
[[nodiscard]] std::string dict_key_str(const DictKey& key);  // "name" or "3"

class Value {
 public:
  enum class Kind : std::uint8_t {
    none,
    boolean,
    integer,
    floating,
    string,
    bytes,
    tensor,
    list,
    tuple,
    dict,
    object,
    dtensor,
    sharded_tensor,
    opaque,
    set,
  };

  Value() noexcept = default;  // none
  Value(std::nullptr_t) noexcept {}
  Value(bool b) : v_(b) {}
  template <class I>
  requires(std::is_integral_v<I> && !std::is_same_v<I, bool>) Value(I i) : v_(static_cast<std::int64_t>(i)) {}
  Value(double d) : v_(d) {}
  Value(float f) : v_(static_cast<double>(f)) {}
  Value(std::string s) : v_(std::move(s)) {}
  Value(std::string_view s) : v_(std::string(s)) {}
  Value(const char* s) : v_(std::string(s)) {}
  Value(Bytes b) : v_(std::move(b)) {}
  Value(Tensor t) : v_(std::move(t)) {}
  Value(std::shared_ptr<List> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Tuple> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Dict> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Object> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Opaque> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<DTensor> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<ShardedTensor> n) : v_(std::move(n)) {}
  Value(std::shared_ptr<Set> n) : v_(std::move(n)) {}

  // Container factories (each creates a new node).
  [[nodiscard]] static Value list(std::vector<Value> items = {});
  [[nodiscard]] static Value tuple(std::vector<Value> items = {});
  // A namedtuple of class `type_name` with these fields, in order.
  [[nodiscard]] static Value named_tuple(std::string type_name,
                                         std::initializer_list<std::pair<std::string, Value>> fields);
  [[nodiscard]] static Value dict(std::initializer_list<std::pair<DictKey, Value>> items = {});
  [[nodiscard]] static Value object(std::string type_name, std::initializer_list<std::pair<std::string, Value>> fields,
                                    bool frozen = false);
  // An object of a class with `__slots__` (its fields, in order).
  [[nodiscard]] static Value slots_object(std::string type_name,
                                          std::initializer_list<std::pair<std::string, Value>> slots);
  // A set (frozen: a frozenset); InvalidArgument on an unhashable or repeated item.
  [[nodiscard]] static Value set(std::vector<Value> items, bool frozen = false);
  [[nodiscard]] static Value opaque(std::string type_name);

  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  [[nodiscard]] bool is_none() const noexcept { return kind() == Kind::none; }
  [[nodiscard]] bool is_tensor() const noexcept { return kind() == Kind::tensor; }
  [[nodiscard]] bool is_container() const noexcept;  // list, tuple, dict, set, object
  // The node's identity, or nullptr for plain values (none, bool, int, float, string, bytes).
  [[nodiscard]] const void* identity() const noexcept;
  // How many handles share this node (0 for plain values). A node with one handle appears once in
  // the tree and cannot be part of a cycle.
  [[nodiscard]] long use_count() const noexcept;
  // Hints the CPU to fetch this node (and, for a tensor, its storage) into cache: traversals of large
  // trees call it a few entries ahead, so that the memory latency of many nodes overlaps.
  void prefetch() const noexcept;

  // Typed access; InvalidArgument (naming the actual kind) on a kind mismatch.
  [[nodiscard]] bool as_bool() const;
  [[nodiscard]] std::int64_t as_int() const;
  [[nodiscard]] double as_double() const;
  [[nodiscard]] const std::string& as_string() const;
  [[nodiscard]] const Bytes& as_bytes() const;
  [[nodiscard]] const Tensor& as_tensor() const;
  [[nodiscard]] List& as_list() const;
  [[nodiscard]] Tuple& as_tuple() const;
  [[nodiscard]] Dict& as_dict() const;
  [[nodiscard]] Object& as_object() const;
  [[nodiscard]] Set& as_set() const;
  [[nodiscard]] Opaque& as_opaque() const;
  [[nodiscard]] const std::shared_ptr<DTensor>& as_dtensor_node() const;
  [[nodiscard]] const std::shared_ptr<ShardedTensor>& as_sharded_tensor_node() const;

  // Navigation helpers: dict key, object field or list/tuple index. InvalidArgument when absent.
  [[nodiscard]] Value operator[](std::string_view key) const;
  [[nodiscard]] Value at(std::size_t index) const;

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, Tensor, std::shared_ptr<List>,
               std::shared_ptr<Tuple>, std::shared_ptr<Dict>, std::shared_ptr<Object>, std::shared_ptr<DTensor>,
               std::shared_ptr<ShardedTensor>, std::shared_ptr<Opaque>, std::shared_ptr<Set>>
      v_;
};

[[nodiscard]] std::string_view value_kind_name(Value::Kind kind) noexcept;

class List {
 public:
  std::vector<Value> items;
};

class Tuple {
 public:
  explicit Tuple(std::vector<Value> items) : items_(std::move(items)) {}
  // A namedtuple: InvalidArgument unless there is one unique, non-empty field name per item.
  Tuple(std::vector<Value> items, std::string type_name, std::vector<std::string> field_names);
  [[nodiscard]] const std::vector<Value>& items() const noexcept { return items_; }
  [[nodiscard]] bool is_named() const noexcept { return !type_name_.empty(); }
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }  // "" for a plain tuple
  [[nodiscard]] const std::vector<std::string>& field_names() const noexcept { return field_names_; }

 private:
  std::vector<Value> items_;
  std::string type_name_;
  std::vector<std::string> field_names_;
};

struct DictKeyHash {
  std::size_t operator()(const DictKey& k) const noexcept;
};

struct DictIndex;  // key -> position, built on demand for larger dicts

class Dict {
 public:
  using Entry = std::pair<DictKey, Value>;

  Dict() = default;
  Dict(const Dict& other);
  Dict& operator=(const Dict& other);
  Dict(Dict&&) noexcept = default;
  Dict& operator=(Dict&&) noexcept = default;
  ~Dict();

  // A new dict with the keys of `keys_from`, in its order, holding `values` (one per key). Cheap: no
  // key is hashed or compared, and the key index is shared until a key is added to either dict.
  [[nodiscard]] static std::shared_ptr<Dict> with_keys_of(const Dict& keys_from, std::vector<Value> values);

  // Inserts or replaces; a replaced key keeps its position (like a Python dict).
  void set(DictKey key, Value value);
  [[nodiscard]] bool contains(const DictKey& key) const { return position(key) != npos; }
  [[nodiscard]] const Value* find(const DictKey& key) const;
  [[nodiscard]] const Value& at(const DictKey& key) const;  // InvalidArgument when absent
  [[nodiscard]] std::size_t size() const noexcept { return entries_.size(); }
  [[nodiscard]] const std::vector<Entry>& entries() const noexcept { return entries_; }
  void reserve(std::size_t n) { entries_.reserve(n); }
  // The Python class of a dict subclass ("collections.OrderedDict"); empty for a plain dict.
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  void set_type_name(std::string type_name) { type_name_ = std::move(type_name); }
  // The class path of a defaultdict's default_factory ("builtins.list"); empty when it has none.
  [[nodiscard]] const std::string& default_factory() const noexcept { return default_factory_; }
  void set_default_factory(std::string factory) { default_factory_ = std::move(factory); }

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  [[nodiscard]] std::size_t position(const DictKey& key) const;
  std::vector<Entry> entries_;
  // Present once a dict holds more than a few entries (built by set(), never by a lookup, so that
  // concurrent readers are safe); shared, copy-on-write, between dicts with the same key list.
  std::shared_ptr<DictIndex> index_;
  std::string type_name_;
  std::string default_factory_;
};

class Object {
 public:
  // InvalidArgument on a repeated field name, or on a frozen object with slots.
  Object(std::string type_name, std::vector<std::pair<std::string, Value>> fields, bool frozen, bool slots = false);

  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }
  [[nodiscard]] bool slots() const noexcept { return slots_; }  // a class with __slots__, not a dataclass
  [[nodiscard]] const std::vector<std::pair<std::string, Value>>& fields() const noexcept { return fields_; }
  [[nodiscard]] bool has_field(std::string_view name) const;
  [[nodiscard]] const Value& field(std::string_view name) const;  // InvalidArgument when absent
  // Assigns a field (adds it when new). InvalidArgument on a frozen object.
  void set_field(std::string_view name, Value value);

 private:
  std::string type_name_;
  std::vector<std::pair<std::string, Value>> fields_;
  bool frozen_;
  bool slots_;
};

class Set {
 public:
  Set(std::vector<Value> items, bool frozen);  // InvalidArgument on an unhashable or repeated item
  [[nodiscard]] const std::vector<Value>& items() const noexcept { return items_; }
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }  // a frozenset

 private:
  std::vector<Value> items_;
  bool frozen_;
};

// Hashable in the Python sense, as a set item: none, bool, int, float, string, bytes, or a tuple of those.
[[nodiscard]] bool is_hashable_plain_value(const Value& v) noexcept;
// Equal as set items: same kind and same value (floats by their bits; tuples item by item).
[[nodiscard]] bool same_plain_value(const Value& a, const Value& b) noexcept;

class Opaque {
 public:
  explicit Opaque(std::string type_name) : type_name_(std::move(type_name)) {}
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

}  // namespace stagekit
