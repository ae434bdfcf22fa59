// stagekit/core/value.h — Value: one node of a state-dict tree.
//
// A state dict is a tree (really a DAG) of Values. Leaves are none, bool, int, float, string,
// bytes, tensor, and the distributed tensor kinds (DTensor in stagekit/core/dtensor.h, ShardedTensor
// in stagekit/core/sharded_tensor.h, both part of the core value model); containers are list, tuple, dict (ordered;
// keys are strings or integers) and object (a dataclass: a type name, ordered fields, and a frozen flag). `opaque`
// stands for a leaf stagekit cannot copy (a lock, a file handle): staging one is an error.
//
// Identity: scalars and strings are plain values. Tensors, lists, tuples, dicts, objects and the other
// node kinds are refcounted nodes: copying a Value shares the node, so the same node can appear twice
// in a tree (identity() tells), exactly like a Python object referenced twice. Lists, dicts and
// non-frozen objects are mutable through any handle; tuples and frozen objects are not.
//
// Invariants: a Value's kind never changes; dict keys are unique; object field names are unique.
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

  // Container factories (each creates a new node).
  [[nodiscard]] static Value list(std::vector<Value> items = {});
  [[nodiscard]] static Value tuple(std::vector<Value> items = {});
  [[nodiscard]] static Value dict(std::initializer_list<std::pair<DictKey, Value>> items = {});
  [[nodiscard]] static Value object(std::string type_name, std::initializer_list<std::pair<std::string, Value>> fields,
                                    bool frozen = false);
  [[nodiscard]] static Value opaque(std::string type_name);

  [[nodiscard]] Kind kind() const noexcept { return static_cast<Kind>(v_.index()); }
  [[nodiscard]] bool is_none() const noexcept { return kind() == Kind::none; }
  [[nodiscard]] bool is_tensor() const noexcept { return kind() == Kind::tensor; }
  [[nodiscard]] bool is_container() const noexcept;  // list, tuple, dict, object
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
  [[nodiscard]] Opaque& as_opaque() const;
  [[nodiscard]] const std::shared_ptr<DTensor>& as_dtensor_node() const;
  [[nodiscard]] const std::shared_ptr<ShardedTensor>& as_sharded_tensor_node() const;

  // Navigation helpers: dict key, object field or list/tuple index. InvalidArgument when absent.
  [[nodiscard]] Value operator[](std::string_view key) const;
  [[nodiscard]] Value at(std::size_t index) const;

 private:
  std::variant<std::monostate, bool, std::int64_t, double, std::string, Bytes, Tensor, std::shared_ptr<List>,
               std::shared_ptr<Tuple>, std::shared_ptr<Dict>, std::shared_ptr<Object>, std::shared_ptr<DTensor>,
               std::shared_ptr<ShardedTensor>, std::shared_ptr<Opaque>>
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
  [[nodiscard]] const std::vector<Value>& items() const noexcept { return items_; }

 private:
  std::vector<Value> items_;
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

 private:
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
  [[nodiscard]] std::size_t position(const DictKey& key) const;
  std::vector<Entry> entries_;
  // Present once a dict holds more than a few entries (built by set(), never by a lookup, so that
  // concurrent readers are safe); shared, copy-on-write, between dicts with the same key list.
  std::shared_ptr<DictIndex> index_;
};

class Object {
 public:
  Object(std::string type_name, std::vector<std::pair<std::string, Value>> fields, bool frozen);

  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }
  [[nodiscard]] bool frozen() const noexcept { return frozen_; }
  [[nodiscard]] const std::vector<std::pair<std::string, Value>>& fields() const noexcept { return fields_; }
  [[nodiscard]] bool has_field(std::string_view name) const;
  [[nodiscard]] const Value& field(std::string_view name) const;  // InvalidArgument when absent
  // Assigns a field (adds it when new). InvalidArgument on a frozen object.
  void set_field(std::string_view name, Value value);

 private:
  std::string type_name_;
  std::vector<std::pair<std::string, Value>> fields_;
  bool frozen_;
};

class Opaque {
 public:
  explicit Opaque(std::string type_name) : type_name_(std::move(type_name)) {}
  [[nodiscard]] const std::string& type_name() const noexcept { return type_name_; }

 private:
  std::string type_name_;
};

}  // namespace stagekit
