// The value codec: a tag byte per node, little-endian fixed-width integers, length-prefixed strings.
#include "stagekit/dist/value_codec.h"

#include <bit>
#include <cstring>

#include <fmt/format.h>

#include "stagekit/core/error.h"
#include "stagekit/core/state_path.h"

namespace stagekit::dist {
namespace {

static_assert(std::endian::native == std::endian::little, "the value codec assumes a little-endian host");

enum class Tag : std::uint8_t { none, boolean, integer, floating, string, bytes, tensor, list, tuple, dict, object };
enum class KeyTag : std::uint8_t { string, integer };

class Writer {
 public:
  void u8(std::uint8_t v) { raw(&v, 1); }
  void u64(std::uint64_t v) { raw(&v, 8); }
  void i64(std::int64_t v) { raw(&v, 8); }
  void f64(double v) { raw(&v, 8); }
  void text(std::string_view s) {
    u64(s.size());
    raw(s.data(), s.size());
  }
  void raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }
  std::vector<std::byte> out;
};

void encode(Writer& w, const Value& v, PathStack& path) {
  switch (v.kind()) {
    case Value::Kind::none: w.u8(static_cast<std::uint8_t>(Tag::none)); return;
    case Value::Kind::boolean:
      w.u8(static_cast<std::uint8_t>(Tag::boolean));
      w.u8(v.as_bool() ? 1 : 0);
      return;
    case Value::Kind::integer:
      w.u8(static_cast<std::uint8_t>(Tag::integer));
      w.i64(v.as_int());
      return;
    case Value::Kind::floating:
      w.u8(static_cast<std::uint8_t>(Tag::floating));
      w.f64(v.as_double());
      return;
    case Value::Kind::string:
      w.u8(static_cast<std::uint8_t>(Tag::string));
      w.text(v.as_string());
      return;
    case Value::Kind::bytes:
      w.u8(static_cast<std::uint8_t>(Tag::bytes));
      w.u64(v.as_bytes().data.size());
      w.raw(v.as_bytes().data.data(), v.as_bytes().data.size());
      return;
    case Value::Kind::tensor: {
      const Tensor& t = v.as_tensor();
      w.u8(static_cast<std::uint8_t>(Tag::tensor));
      w.text(dtype_name(t.dtype()));
      w.u64(static_cast<std::uint64_t>(t.dim()));
      for (std::int64_t s : t.sizes()) w.i64(s);
      const auto bytes = t.to_bytes();
      w.u64(bytes.size());
      w.raw(bytes.data(), bytes.size());
      return;
    }
    case Value::Kind::list:
    case Value::Kind::tuple: {
      const auto& items = v.kind() == Value::Kind::list ? v.as_list().items : v.as_tuple().items();
      w.u8(static_cast<std::uint8_t>(v.kind() == Value::Kind::list ? Tag::list : Tag::tuple));
      w.u64(items.size());
      for (std::size_t i = 0; i < items.size(); ++i) {
        PathScope scope(path, i);
        encode(w, items[i], path);
      }
      return;
    }
    case Value::Kind::dict: {
      w.u8(static_cast<std::uint8_t>(Tag::dict));
      w.u64(v.as_dict().size());
      for (const auto& [k, x] : v.as_dict().entries()) {
        if (const auto* s = std::get_if<std::string>(&k)) {
          w.u8(static_cast<std::uint8_t>(KeyTag::string));
          w.text(*s);
        } else {
          w.u8(static_cast<std::uint8_t>(KeyTag::integer));
          w.i64(std::get<std::int64_t>(k));
        }
        PathScope scope(path, k);
        encode(w, x, path);
      }
      return;
    }
    case Value::Kind::object: {
      const Object& o = v.as_object();
      w.u8(static_cast<std::uint8_t>(Tag::object));
      w.text(o.type_name());
      w.u8(o.frozen() ? 1 : 0);
      w.u64(o.fields().size());
      for (const auto& [name, x] : o.fields()) {
        w.text(name);
        PathScope scope(path, std::string_view(name));
        encode(w, x, path);
      }
      return;
    }
    default:
      throw Unsupported(fmt::format("a {} value cannot be encoded for sending", value_kind_name(v.kind())), path.str());
  }
}

class Reader {
 public:
  explicit Reader(std::span<const std::byte> in) : in_(in) {}
  void need(std::size_t n, std::string_view what) const {
    if (n > in_.size() - at_) {
      throw CorruptionError(fmt::format("truncated encoded value: {} needs {} byte(s) at offset {}, {} left", what, n, at_,
                                        in_.size() - at_));
    }
  }
  std::uint8_t u8(std::string_view what) {
    need(1, what);
    return static_cast<std::uint8_t>(in_[at_++]);
  }
  template <class T>
  T fixed(std::string_view what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, in_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return v;
  }
  std::span<const std::byte> take(std::uint64_t n, std::string_view what) {
    need(n, what);
    auto s = in_.subspan(at_, n);
    at_ += n;
    return s;
  }
  std::string text(std::string_view what) {
    const auto n = fixed<std::uint64_t>(what);
    const auto s = take(n, what);
    return {reinterpret_cast<const char*>(s.data()), s.size()};
  }
  // A count of items that each need at least one byte: bounded by what is left.
  std::uint64_t count(std::string_view what) {
    const auto n = fixed<std::uint64_t>(what);
    if (n > in_.size() - at_) throw CorruptionError(fmt::format("{} count {} at offset {} exceeds the input", what, n, at_));
    return n;
  }
  [[nodiscard]] std::size_t offset() const noexcept { return at_; }
  [[nodiscard]] bool done() const noexcept { return at_ == in_.size(); }

 private:
  std::span<const std::byte> in_;
  std::size_t at_ = 0;
};

Value decode(Reader& r, int depth) {
  if (depth > 512) throw CorruptionError(fmt::format("encoded value nested deeper than 512 at offset {}", r.offset()));
  const std::size_t start = r.offset();
  const auto tag = static_cast<Tag>(r.u8("a tag"));
  switch (tag) {
    case Tag::none: return Value();
    case Tag::boolean: return Value(r.u8("a bool") != 0);
    case Tag::integer: return Value(r.fixed<std::int64_t>("an int"));
    case Tag::floating: return Value(r.fixed<double>("a float"));
    case Tag::string: return Value(r.text("a string"));
    case Tag::bytes: {
      const auto n = r.fixed<std::uint64_t>("bytes");
      const auto s = r.take(n, "bytes");
      return Value(Bytes{std::vector<std::byte>(s.begin(), s.end())});
    }
    case Tag::tensor: {
      const std::string name = r.text("a dtype");
      const auto dtype = dtype_from_name(name);
      if (!dtype) throw CorruptionError(fmt::format("unknown dtype '{}' at offset {}", name, start));
      const auto dims = r.fixed<std::uint64_t>("tensor rank");
      if (dims > 64) throw CorruptionError(fmt::format("tensor of rank {} at offset {}", dims, start));
      IntList sizes;
      for (std::uint64_t i = 0; i < dims; ++i) {
        const auto s = r.fixed<std::int64_t>("a tensor size");
        if (s < 0) throw CorruptionError(fmt::format("negative tensor size at offset {}", start));
        sizes.push_back(s);
      }
      const auto n = r.fixed<std::uint64_t>("tensor bytes");
      const auto payload = r.take(n, "tensor bytes");
      std::uint64_t elements = 1;
      for (std::int64_t s : sizes) {
        if (s != 0 && elements > (std::uint64_t{1} << 62) / static_cast<std::uint64_t>(s)) {
          throw CorruptionError(fmt::format("tensor too large at offset {}", start));
        }
        elements *= static_cast<std::uint64_t>(s);
      }
      if (elements * element_size(*dtype) != n) {
        throw CorruptionError(fmt::format("tensor at offset {} has {} bytes for {} elements of {}", start, n, elements, name));
      }
      Tensor t = Tensor::empty(sizes, *dtype);
      if (n > 0) std::memcpy(t.data_ptr(), payload.data(), n);
      return Value(t);
    }
    case Tag::list:
    case Tag::tuple: {
      const std::uint64_t n = r.count("items");
      std::vector<Value> items;
      items.reserve(n);
      for (std::uint64_t i = 0; i < n; ++i) items.push_back(decode(r, depth + 1));
      return tag == Tag::list ? Value::list(std::move(items)) : Value::tuple(std::move(items));
    }
    case Tag::dict: {
      const std::uint64_t n = r.count("dict entries");
      auto d = std::make_shared<Dict>();
      for (std::uint64_t i = 0; i < n; ++i) {
        const auto key_tag = static_cast<KeyTag>(r.u8("a key tag"));
        DictKey key;
        if (key_tag == KeyTag::string) key = r.text("a key");
        else if (key_tag == KeyTag::integer) key = r.fixed<std::int64_t>("a key");
        else throw CorruptionError(fmt::format("bad dict key tag at offset {}", r.offset() - 1));
        d->set(std::move(key), decode(r, depth + 1));
      }
      return Value(d);
    }
    case Tag::object: {
      std::string type = r.text("an object type");
      const bool frozen = r.u8("a frozen flag") != 0;
      const std::uint64_t n = r.count("object fields");
      std::vector<std::pair<std::string, Value>> fields;
      for (std::uint64_t i = 0; i < n; ++i) {
        std::string name = r.text("a field name");
        fields.emplace_back(std::move(name), decode(r, depth + 1));
      }
      return Value(std::make_shared<Object>(std::move(type), std::move(fields), frozen));
    }
  }
  throw CorruptionError(fmt::format("unknown value tag at offset {}", start));
}

}  // namespace

std::vector<std::byte> encode_value(const Value& value) {
  Writer w;
  PathStack path;
  encode(w, value, path);
  return std::move(w.out);
}

Value decode_value(std::span<const std::byte> bytes) {
  Reader r(bytes);
  Value v = decode(r, 0);
  if (!r.done()) throw CorruptionError(fmt::format("{} trailing byte(s) after the encoded value", bytes.size() - r.offset()));
  return v;
}

}  // namespace stagekit::dist
