// compare_like_upstream(): the assertions of PyTorch's `compare_state_dicts` helper (spec A.0).
#include <map>

#include <fmt/format.h>

#include "stagekit/core/state_path.h"
#include "verify.h"

namespace stagekit::conformance {
namespace {

class UpstreamComparer {
 public:
  explicit UpstreamComparer(Device source_device) : source_device_(source_device) {}

  void compare(const Value& a, const Value& b) {
    const auto ka = a.kind();
    const auto kb = b.kind();
    if (ka == Value::Kind::tensor && kb == Value::Kind::tensor) return compare_tensors(a.as_tensor(), b.as_tensor());
    if (ka == Value::Kind::dict && kb == Value::Kind::dict) return compare_dicts(a.as_dict(), b.as_dict());
    const bool seq_a = ka == Value::Kind::list || ka == Value::Kind::tuple;
    const bool seq_b = kb == Value::Kind::list || kb == Value::Kind::tuple;
    if (seq_a && seq_b) {
      const auto& ia = ka == Value::Kind::list ? a.as_list().items : a.as_tuple().items();
      const auto& ib = kb == Value::Kind::list ? b.as_list().items : b.as_tuple().items();
      if (ia.size() != ib.size()) return fail("length", fmt::format("{} vs {} items", ia.size(), ib.size()));
      if (ka != kb) return fail("type", fmt::format("{} vs {}", value_kind_name(ka), value_kind_name(kb)));
      for (std::size_t i = 0; i < ia.size(); ++i) {
        PathScope s(path_, i);
        compare(ia[i], ib[i]);
      }
      return;
    }
    if (ka == Value::Kind::object && kb == Value::Kind::object) {
      const Object& oa = a.as_object();
      const Object& ob = b.as_object();
      if (oa.type_name() != ob.type_name())
        return fail("type", fmt::format("{} vs {}", oa.type_name(), ob.type_name()));
      std::map<std::string, const Value*> fa;
      std::map<std::string, const Value*> fb;
      for (const auto& [n, v] : oa.fields()) fa[n] = &v;
      for (const auto& [n, v] : ob.fields()) fb[n] = &v;
      if (key_set(fa) != key_set(fb)) return fail("fields", fmt::format("{} vs {}", key_set(fa), key_set(fb)));
      for (const auto& [n, v] : oa.fields()) {
        PathScope s(path_, std::string_view(n));
        compare(v, *fb[n]);
      }
      return;
    }
    if (ka != kb) return fail("type", fmt::format("{} vs {}", value_kind_name(ka), value_kind_name(kb)));
    bool equal = true;
    switch (ka) {
      case Value::Kind::none: break;
      case Value::Kind::boolean: equal = a.as_bool() == b.as_bool(); break;
      case Value::Kind::integer: equal = a.as_int() == b.as_int(); break;
      case Value::Kind::floating: equal = a.as_double() == b.as_double(); break;
      case Value::Kind::string: equal = a.as_string() == b.as_string(); break;
      case Value::Kind::bytes: equal = a.as_bytes() == b.as_bytes(); break;
      default: equal = a.identity() == b.identity(); break;
    }
    if (!equal) fail("value", "values differ");
  }

  std::vector<Failure> failures;

 private:
  template <class M>
  static std::string key_set(const M& m) {
    std::string out;
    for (const auto& [k, v] : m) out += (out.empty() ? "" : ",") + k;
    return "{" + out + "}";
  }

  void fail(std::string_view property, std::string detail) {
    failures.push_back({path_.str(), std::string(property), std::move(detail)});
  }

  void compare_dicts(const Dict& a, const Dict& b) {
    std::map<std::string, int> ka;
    std::map<std::string, int> kb;
    for (const auto& [k, v] : a.entries()) ka[describe_key(k)] = 0;
    for (const auto& [k, v] : b.entries()) kb[describe_key(k)] = 0;
    if (ka != kb || a.size() != b.size()) return fail("keys", fmt::format("{} vs {}", key_set(ka), key_set(kb)));
    for (const auto& [k, v] : a.entries()) {
      const Value* other = b.find(k);
      if (other == nullptr) return fail("keys", "key " + describe_key(k) + " missing");
      PathScope s(path_, k);
      compare(v, *other);
    }
  }

  void compare_tensors(const Tensor& src, const Tensor& staged) {
    if (src.device() != source_device_) {
      return fail("device",
                  fmt::format("source tensor is on {}, expected {}", src.device().str(), source_device_.str()));
    }
    if (!staged.device().is_cpu()) return fail("device", "staged tensor is on " + staged.device().str());
    if (src.storage_offset() != staged.storage_offset()) {
      return fail("storage offset", fmt::format("{} vs {}", src.storage_offset(), staged.storage_offset()));
    }
    if (!Tensor::equal(src, staged))
      return fail("values", "staged values differ from the source: " + describe_difference(staged, src));
    const void* a = src.storage().data();
    const void* b = staged.storage().data();
    if (a == nullptr) return;  // zero-byte storages have no base address to key on
    auto it = staged_of_.find(a);
    if (it != staged_of_.end()) {
      if (it->second != b) fail("storage sharing", "source tensors share storage but staged tensors don't");
    } else {
      staged_of_[a] = b;
    }
  }

  Device source_device_;
  PathStack path_;
  std::map<const void*, const void*> staged_of_;
};

}  // namespace

std::vector<Failure> compare_like_upstream(const Value& source, const Value& staged, Device source_device) {
  UpstreamComparer c(source_device);
  c.compare(source, staged);
  return std::move(c.failures);
}

}  // namespace stagekit::conformance
