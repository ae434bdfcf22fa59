#include "stagekit/core/value.h"

#include <bit>

#include <absl/container/flat_hash_map.h>
#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit {

std::string dict_key_str(const DictKey& key) {
  if (const auto* s = std::get_if<std::string>(&key)) return *s;
  return std::to_string(std::get<std::int64_t>(key));
}

std::size_t DictKeyHash::operator()(const DictKey& k) const noexcept {
  if (const auto* s = std::get_if<std::string>(&k)) return std::hash<std::string>{}(*s);
  return std::hash<std::int64_t>{}(std::get<std::int64_t>(k)) ^ 0x5bd1e995U;
}

std::string_view value_kind_name(Value::Kind kind) noexcept {
  switch (kind) {
    case Value::Kind::none: return "none";
    case Value::Kind::boolean: return "bool";
    case Value::Kind::integer: return "int";
    case Value::Kind::floating: return "float";
    case Value::Kind::string: return "string";
    case Value::Kind::bytes: return "bytes";
    case Value::Kind::tensor: return "tensor";
    case Value::Kind::list: return "list";
    case Value::Kind::tuple: return "tuple";
    case Value::Kind::dict: return "dict";
    case Value::Kind::object: return "object";
    case Value::Kind::dtensor: return "dtensor";
    case Value::Kind::sharded_tensor: return "sharded_tensor";
    case Value::Kind::opaque: return "opaque";
    case Value::Kind::set: return "set";
  }
  return "unknown";
}

Value Value::list(std::vector<Value> items) {
  auto node = std::make_shared<List>();
  node->items = std::move(items);
  return Value(std::move(node));
}

Value Value::tuple(std::vector<Value> items) { return Value(std::make_shared<Tuple>(std::move(items))); }

Value Value::named_tuple(std::string type_name, std::initializer_list<std::pair<std::string, Value>> fields) {
  std::vector<Value> items;
  std::vector<std::string> names;
  items.reserve(fields.size());
  names.reserve(fields.size());
  for (const auto& [name, value] : fields) {
    names.push_back(name);
    items.push_back(value);
  }
  return Value(std::make_shared<Tuple>(std::move(items), std::move(type_name), std::move(names)));
}

Value Value::dict(std::initializer_list<std::pair<DictKey, Value>> items) {
  auto node = std::make_shared<Dict>();
  node->reserve(items.size());
  for (const auto& [k, v] : items) node->set(k, v);
  return Value(std::move(node));
}

Value Value::object(std::string type_name, std::initializer_list<std::pair<std::string, Value>> fields, bool frozen) {
  return Value(
      std::make_shared<Object>(std::move(type_name), std::vector<std::pair<std::string, Value>>(fields), frozen));
}

Value Value::slots_object(std::string type_name, std::initializer_list<std::pair<std::string, Value>> slots) {
  return Value(std::make_shared<Object>(std::move(type_name), std::vector<std::pair<std::string, Value>>(slots),
                                        /*frozen=*/false, /*slots=*/true));
}

Value Value::set(std::vector<Value> items, bool frozen) {
  return Value(std::make_shared<Set>(std::move(items), frozen));
}

Value Value::opaque(std::string type_name) { return Value(std::make_shared<Opaque>(std::move(type_name))); }

bool Value::is_container() const noexcept {
  const Kind k = kind();
  return k == Kind::list || k == Kind::tuple || k == Kind::dict || k == Kind::set || k == Kind::object;
}

const void* Value::identity() const noexcept {
  return std::visit(
      [](const auto& v) -> const void* {
        using T = std::decay_t<decltype(v)>;
        if constexpr (std::is_same_v<T, Tensor>) {
          return v.identity();
        } else if constexpr (requires { v.get(); }) {
          return v.get();
        } else {
          return nullptr;
        }
      },
      v_);
}

long Value::use_count() const noexcept {
  return std::visit(
      [](const auto& v) -> long {
        if constexpr (requires { v.use_count(); }) {  // tensors and the refcounted nodes
          return v.use_count();
        } else {
          return 0;
        }
      },
      v_);
}

void Value::prefetch() const noexcept {
  if (const Tensor* t = std::get_if<Tensor>(&v_)) {
    t->prefetch();
  } else if (const void* node = identity()) {
    __builtin_prefetch(node);
  }
}

namespace {
template <class T>
const T& get_or_throw(const auto& variant, Value::Kind actual, std::string_view wanted) {
  if (const T* p = std::get_if<T>(&variant)) return *p;
  throw InvalidArgument(fmt::format("expected a {} value, got {}", wanted, value_kind_name(actual)));
}
}  // namespace

bool Value::as_bool() const { return get_or_throw<bool>(v_, kind(), "bool"); }
std::int64_t Value::as_int() const { return get_or_throw<std::int64_t>(v_, kind(), "int"); }
double Value::as_double() const { return get_or_throw<double>(v_, kind(), "float"); }
const std::string& Value::as_string() const { return get_or_throw<std::string>(v_, kind(), "string"); }
const Bytes& Value::as_bytes() const { return get_or_throw<Bytes>(v_, kind(), "bytes"); }
const Tensor& Value::as_tensor() const { return get_or_throw<Tensor>(v_, kind(), "tensor"); }
List& Value::as_list() const { return *get_or_throw<std::shared_ptr<List>>(v_, kind(), "list"); }
Tuple& Value::as_tuple() const { return *get_or_throw<std::shared_ptr<Tuple>>(v_, kind(), "tuple"); }
Dict& Value::as_dict() const { return *get_or_throw<std::shared_ptr<Dict>>(v_, kind(), "dict"); }
Object& Value::as_object() const { return *get_or_throw<std::shared_ptr<Object>>(v_, kind(), "object"); }
Set& Value::as_set() const { return *get_or_throw<std::shared_ptr<Set>>(v_, kind(), "set"); }
Opaque& Value::as_opaque() const { return *get_or_throw<std::shared_ptr<Opaque>>(v_, kind(), "opaque"); }
const std::shared_ptr<DTensor>& Value::as_dtensor_node() const {
  return get_or_throw<std::shared_ptr<DTensor>>(v_, kind(), "dtensor");
}
const std::shared_ptr<ShardedTensor>& Value::as_sharded_tensor_node() const {
  return get_or_throw<std::shared_ptr<ShardedTensor>>(v_, kind(), "sharded_tensor");
}

Value Value::operator[](std::string_view key) const {
  if (kind() == Kind::dict) return as_dict().at(DictKey(std::string(key)));
  if (kind() == Kind::object) return as_object().field(key);
  throw InvalidArgument(fmt::format("cannot look up '{}' in a {} value", key, value_kind_name(kind())));
}

Value Value::at(std::size_t index) const {
  const std::vector<Value>* items = nullptr;
  if (kind() == Kind::list) items = &as_list().items;
  if (kind() == Kind::tuple) items = &as_tuple().items();
  if (items == nullptr) throw InvalidArgument(fmt::format("cannot index a {} value", value_kind_name(kind())));
  if (index >= items->size()) {
    throw InvalidArgument(
        fmt::format("index {} out of range for a {} of {} items", index, value_kind_name(kind()), items->size()));
  }
  return (*items)[index];
}

// ---- Dict ------------------------------------------------------------------------------------------

struct DictIndex {
  absl::flat_hash_map<DictKey, std::size_t, DictKeyHash> positions;
};

namespace {
constexpr std::size_t kLinearSearchLimit = 16;  // smaller dicts are searched without an index
}

Dict::Dict(const Dict& other)
    : entries_(other.entries_),
      index_(other.index_),
      type_name_(other.type_name_),
      default_factory_(other.default_factory_) {}

Dict& Dict::operator=(const Dict& other) {
  if (this != &other) {
    entries_ = other.entries_;
    index_ = other.index_;
    type_name_ = other.type_name_;
    default_factory_ = other.default_factory_;
  }
  return *this;
}

Dict::~Dict() = default;

std::shared_ptr<Dict> Dict::with_keys_of(const Dict& keys_from, std::vector<Value> values) {
  STAGEKIT_INTERNAL_ASSERT(values.size() == keys_from.entries_.size());
  auto out = std::make_shared<Dict>();
  out->entries_.reserve(values.size());
  for (std::size_t i = 0; i < values.size(); ++i)
    out->entries_.emplace_back(keys_from.entries_[i].first, std::move(values[i]));
  out->index_ = keys_from.index_;
  out->type_name_ = keys_from.type_name_;
  out->default_factory_ = keys_from.default_factory_;
  return out;
}

std::size_t Dict::position(const DictKey& key) const {
  if (!index_) {
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      if (entries_[i].first == key) return i;
    }
    return npos;
  }
  auto it = index_->positions.find(key);
  return it == index_->positions.end() ? npos : it->second;
}

void Dict::set(DictKey key, Value value) {
  const std::size_t at = position(key);
  if (at != npos) {
    entries_[at].second = std::move(value);
    return;
  }
  entries_.emplace_back(std::move(key), std::move(value));
  if (index_) {
    if (index_.use_count() > 1) index_ = std::make_shared<DictIndex>(*index_);  // copy on write
    index_->positions.emplace(entries_.back().first, entries_.size() - 1);
  } else if (entries_.size() > kLinearSearchLimit) {
    // Built here, by the writer, so that lookups never modify the dict.
    auto index = std::make_shared<DictIndex>();
    index->positions.reserve(entries_.size() * 2);
    for (std::size_t i = 0; i < entries_.size(); ++i) index->positions.emplace(entries_[i].first, i);
    index_ = std::move(index);
  }
}

const Value* Dict::find(const DictKey& key) const {
  const std::size_t at = position(key);
  return at == npos ? nullptr : &entries_[at].second;
}

const Value& Dict::at(const DictKey& key) const {
  if (const Value* v = find(key)) return *v;
  throw InvalidArgument(fmt::format("dict has no key '{}'", dict_key_str(key)));
}

// ---- Tuple -----------------------------------------------------------------------------------------

Tuple::Tuple(std::vector<Value> items, std::string type_name, std::vector<std::string> field_names)
    : items_(std::move(items)), type_name_(std::move(type_name)), field_names_(std::move(field_names)) {
  if (type_name_.empty()) {
    if (!field_names_.empty()) throw InvalidArgument("a plain tuple has no field names");
    return;
  }
  if (field_names_.size() != items_.size()) {
    throw InvalidArgument(
        fmt::format("namedtuple {} has {} field names for {} items", type_name_, field_names_.size(), items_.size()));
  }
  for (std::size_t i = 0; i < field_names_.size(); ++i) {
    if (field_names_[i].empty())
      throw InvalidArgument(fmt::format("namedtuple {} has an empty field name", type_name_));
    for (std::size_t j = 0; j < i; ++j) {
      if (field_names_[i] == field_names_[j]) {
        throw InvalidArgument(fmt::format("namedtuple {} has field '{}' twice", type_name_, field_names_[i]));
      }
    }
  }
}

// ---- Set -------------------------------------------------------------------------------------------

bool is_hashable_plain_value(const Value& v) noexcept {
  switch (v.kind()) {
    case Value::Kind::none:
    case Value::Kind::boolean:
    case Value::Kind::integer:
    case Value::Kind::floating:
    case Value::Kind::string:
    case Value::Kind::bytes: return true;
    case Value::Kind::tuple:
      for (const Value& item : v.as_tuple().items()) {
        if (!is_hashable_plain_value(item)) return false;
      }
      return true;
    default: return false;
  }
}

bool same_plain_value(const Value& a, const Value& b) noexcept {
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case Value::Kind::none: return true;
    case Value::Kind::boolean: return a.as_bool() == b.as_bool();
    case Value::Kind::integer: return a.as_int() == b.as_int();
    case Value::Kind::floating:
      return std::bit_cast<std::uint64_t>(a.as_double()) == std::bit_cast<std::uint64_t>(b.as_double());
    case Value::Kind::string: return a.as_string() == b.as_string();
    case Value::Kind::bytes: return a.as_bytes() == b.as_bytes();
    case Value::Kind::tuple: {
      const auto& x = a.as_tuple().items();
      const auto& y = b.as_tuple().items();
      if (x.size() != y.size() || a.as_tuple().type_name() != b.as_tuple().type_name()) return false;
      for (std::size_t i = 0; i < x.size(); ++i) {
        if (!same_plain_value(x[i], y[i])) return false;
      }
      return true;
    }
    default: return a.identity() == b.identity();
  }
}

Set::Set(std::vector<Value> items, bool frozen) : items_(std::move(items)), frozen_(frozen) {
  for (std::size_t i = 0; i < items_.size(); ++i) {
    if (!is_hashable_plain_value(items_[i])) {
      throw InvalidArgument(
          fmt::format("a set cannot hold a {} value (item #{}): set items must be hashable plain "
                      "values (none, bool, int, float, string, bytes, tuples of those)",
                      value_kind_name(items_[i].kind()), i));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (same_plain_value(items_[i], items_[j])) {
        throw InvalidArgument(fmt::format("set item #{} repeats item #{}", i, j));
      }
    }
  }
}

// ---- Object ----------------------------------------------------------------------------------------

Object::Object(std::string type_name, std::vector<std::pair<std::string, Value>> fields, bool frozen, bool slots)
    : type_name_(std::move(type_name)), fields_(std::move(fields)), frozen_(frozen), slots_(slots) {
  if (frozen_ && slots_) {
    throw InvalidArgument(fmt::format("object {}: an object with __slots__ cannot be frozen", type_name_));
  }
  for (std::size_t i = 0; i < fields_.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      if (fields_[i].first == fields_[j].first) {
        throw InvalidArgument(fmt::format("object {} has field '{}' twice", type_name_, fields_[i].first));
      }
    }
  }
}

bool Object::has_field(std::string_view name) const {
  for (const auto& f : fields_) {
    if (f.first == name) return true;
  }
  return false;
}

const Value& Object::field(std::string_view name) const {
  for (const auto& f : fields_) {
    if (f.first == name) return f.second;
  }
  throw InvalidArgument(fmt::format("object {} has no field '{}'", type_name_, name));
}

void Object::set_field(std::string_view name, Value value) {
  if (frozen_) {
    throw InvalidArgument(fmt::format("cannot assign to field '{}' of frozen object {}", name, type_name_));
  }
  for (auto& f : fields_) {
    if (f.first == name) {
      f.second = std::move(value);
      return;
    }
  }
  fields_.emplace_back(std::string(name), std::move(value));
}

}  // namespace stagekit
