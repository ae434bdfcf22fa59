// verify_staged() and verify_memory_kinds(): the strict contract of a staged state dict.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <unordered_map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "stagekit/core/cuda.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/state_path.h"
#include "stagekit/testing/memory_probe.h"
#include "verify.h"

namespace stagekit::conformance {
namespace {

constexpr std::size_t kMaxForkProbes = 64;

// Exact bits on purpose: NaN payloads and the sign of zero must survive staging.
bool same_bits(double a, double b) {
  return std::memcmp(&a, &b, sizeof a) == 0;  // NOLINT(bugprone-suspicious-memory-comparison)
}

// "nan (0x7ff8000000000123)": the value and its bits, which tell NaN payloads and -0.0 apart.
std::string value_and_bits(double d) {
  std::uint64_t bits = 0;
  std::memcpy(&bits, &d, sizeof bits);
  return fmt::format("{} (0x{:016x})", d, bits);
}

std::vector<std::byte> storage_bytes(const Storage& s) {
  std::vector<std::byte> out(s.nbytes());
  if (out.empty()) return out;
  Storage host = Storage::allocate(s.nbytes());
  copy_bytes(host, 0, s, 0, s.nbytes());
  std::memcpy(out.data(), host.data(), out.size());
  return out;
}

// "12 of 3145733 bytes differ, from byte 3145721 to byte 3145732 (at byte 3145721: 0x00 staged, 0x5c
// in the source)": how many bytes, where the differences start and end, and the first one.
std::string byte_difference(const std::vector<std::byte>& source, const std::vector<std::byte>& staged) {
  std::size_t count = 0;
  std::size_t first = 0;
  std::size_t last = 0;
  for (std::size_t i = 0; i < source.size() && i < staged.size(); ++i) {
    if (source[i] == staged[i]) continue;
    if (count++ == 0) first = i;
    last = i;
  }
  if (count == 0) return "no byte differs";
  const std::string where =
      count == 1 ? fmt::format("byte {}", first) : fmt::format("from byte {} to byte {}", first, last);
  return fmt::format("{} of {} bytes differ, {} (at byte {}: {:#04x} staged, {:#04x} in the source)", count,
                     source.size(), where, first, static_cast<unsigned>(staged[first]),
                     static_cast<unsigned>(source[first]));
}

struct StagedStorage {
  Storage storage;
  std::string path;  // first tensor seen on it
};

class StrictVerifier {
 public:
  explicit StrictVerifier(const MemoryExpectation& memory) : memory_(memory) {}

  void visit(const Value& s, const Value& d) {
    if (s.kind() != d.kind()) {
      return fail("kind",
                  fmt::format("source is {}, staged is {}", value_kind_name(s.kind()), value_kind_name(d.kind())));
    }
    const void* sid = s.identity();
    if (sid != nullptr) {
      const void* did = d.identity();
      if (did == sid) return fail("deep copy", "the staged node is the source node itself (not copied)");
      auto [it, first_time] = staged_node_of_.emplace(sid, did);
      if (!first_time) {
        if (it->second != did) {
          fail("identity", "the source node appears more than once but was staged to different nodes");
        }
        return;  // already verified at its first occurrence
      }
      auto [rit, fresh] = source_node_of_.emplace(did, sid);
      if (!fresh && rit->second != sid) {
        return fail("identity", "distinct source nodes were staged to the same node");
      }
    }
    switch (s.kind()) {
      case Value::Kind::none: return;
      case Value::Kind::boolean: check(s.as_bool() == d.as_bool(), "value", "bool differs"); return;
      case Value::Kind::integer:
        check(s.as_int() == d.as_int(), "value", fmt::format("{} vs {}", s.as_int(), d.as_int()));
        return;
      case Value::Kind::floating:
        check(same_bits(s.as_double(), d.as_double()), "value",
              fmt::format("{} vs {} (compared bit for bit)", value_and_bits(s.as_double()),
                          value_and_bits(d.as_double())));
        return;
      case Value::Kind::string:
        check(s.as_string() == d.as_string(), "value", fmt::format("'{}' vs '{}'", s.as_string(), d.as_string()));
        return;
      case Value::Kind::bytes: check(s.as_bytes() == d.as_bytes(), "value", "bytes differ"); return;
      case Value::Kind::tensor: return visit_tensor(s.as_tensor(), d.as_tensor());
      case Value::Kind::list: return visit_items(s.as_list().items, d.as_list().items);
      case Value::Kind::tuple: return visit_tuple(s.as_tuple(), d.as_tuple());
      case Value::Kind::dict: return visit_dict(s.as_dict(), d.as_dict());
      case Value::Kind::set: return visit_set(s.as_set(), d.as_set());
      case Value::Kind::object: return visit_object(s.as_object(), d.as_object());
      case Value::Kind::dtensor: return visit_dtensor(*s.as_dtensor_node(), *d.as_dtensor_node());
      case Value::Kind::sharded_tensor:
        return visit_sharded_tensor(*s.as_sharded_tensor_node(), *d.as_sharded_tensor_node());
      case Value::Kind::opaque:
        return fail("kind", std::string("no strict verifier for ") + std::string(value_kind_name(s.kind())));
    }
  }

  void finish() {
    check_address_ranges();
    if (memory_.check_memory) check_memory();
  }

  std::vector<Failure> failures;

 private:
  void fail(std::string_view property, std::string detail) {
    failures.push_back({path_.str(), std::string(property), std::move(detail)});
  }
  void check(bool ok, std::string_view property, std::string detail) {
    if (!ok) fail(property, std::move(detail));
  }

  void visit_items(const std::vector<Value>& s, const std::vector<Value>& d) {
    if (s.size() != d.size()) return fail("length", fmt::format("{} vs {} items", s.size(), d.size()));
    for (std::size_t i = 0; i < s.size(); ++i) {
      PathScope scope(path_, i);
      visit(s[i], d[i]);
    }
  }

  void visit_tuple(const Tuple& s, const Tuple& d) {
    if (s.type_name() != d.type_name() || s.field_names() != d.field_names()) {
      return fail("tuple type",
                  fmt::format("source is {}, staged is {}", describe_tuple_type(s), describe_tuple_type(d)));
    }
    visit_items(s.items(), d.items());
  }

  static std::string describe_tuple_type(const Tuple& t) {
    if (!t.is_named()) return "a plain tuple";
    return fmt::format("namedtuple {}({})", t.type_name(), fmt::join(t.field_names(), ", "));
  }

  // Set items are plain values: the same items (in any order, as Python iterates a copy), the same
  // frozenness; the staged set is a new node (checked in visit()).
  void visit_set(const Set& s, const Set& d) {
    check(s.frozen() == d.frozen(), "set type",
          fmt::format("source is a {}, staged is a {}", s.frozen() ? "frozenset" : "set",
                      d.frozen() ? "frozenset" : "set"));
    if (s.items().size() != d.items().size()) {
      return fail("set items", fmt::format("{} vs {} items", s.items().size(), d.items().size()));
    }
    for (std::size_t i = 0; i < s.items().size(); ++i) {
      const bool found = std::any_of(d.items().begin(), d.items().end(),
                                     [&](const Value& x) { return same_plain_value(s.items()[i], x); });
      if (!found) return fail("set items", fmt::format("source item #{} is missing from the staged set", i));
    }
  }

  void visit_dict(const Dict& s, const Dict& d) {
    if (s.type_name() != d.type_name()) {
      return fail("dict type", fmt::format("source is {}, staged is {}", describe_dict_type(s), describe_dict_type(d)));
    }
    if (s.default_factory() != d.default_factory()) {
      return fail("default factory",
                  fmt::format("source's is {}, staged's is {}", describe_factory(s), describe_factory(d)));
    }
    if (s.size() != d.size())
      return fail("keys", fmt::format("{} vs {} keys{}", s.size(), d.size(), key_difference(s, d)));
    for (std::size_t i = 0; i < s.size(); ++i) {
      const auto& [sk, sv] = s.entries()[i];
      const auto& [dk, dv] = d.entries()[i];
      if (sk != dk) {
        return fail("key order",
                    fmt::format("key #{} is {} in the source and {} staged", i, describe_key(sk), describe_key(dk)));
      }
      PathScope scope(path_, sk);
      visit(sv, dv);
    }
  }

  // "; missing from the staged dict: 'a', 'b'; not in the source: 'c'" (up to 8 keys each).
  static std::string key_difference(const Dict& s, const Dict& d) {
    auto absent = [](const Dict& from, const Dict& in) {
      std::vector<std::string> keys;
      for (const auto& [k, v] : from.entries()) {
        if (!in.contains(k)) keys.push_back(describe_key(k));
      }
      if (keys.size() > 8) {
        const std::size_t more = keys.size() - 8;
        keys.resize(8);
        keys.push_back(fmt::format("and {} more", more));
      }
      return keys;
    };
    std::string out;
    if (const auto missing = absent(s, d); !missing.empty())
      out += fmt::format("; missing from the staged dict: {}", fmt::join(missing, ", "));
    if (const auto extra = absent(d, s); !extra.empty())
      out += fmt::format("; not in the source: {}", fmt::join(extra, ", "));
    return out;
  }

  static std::string describe_factory(const Dict& d) {
    return d.default_factory().empty() ? std::string("none") : d.default_factory();
  }

  static std::string describe_dict_type(const Dict& d) {
    return d.type_name().empty() ? std::string("a plain dict") : d.type_name();
  }

  void visit_object(const Object& s, const Object& d) {
    check(s.slots() == d.slots(), "object kind",
          fmt::format("source is {}, staged is {}", s.slots() ? "an object with __slots__" : "a dataclass",
                      d.slots() ? "an object with __slots__" : "a dataclass"));
    check(s.type_name() == d.type_name(), "object type", fmt::format("{} vs {}", s.type_name(), d.type_name()));
    check(s.frozen() == d.frozen(), "frozen",
          fmt::format("source frozen={}, staged frozen={}", s.frozen(), d.frozen()));
    if (s.fields().size() != d.fields().size()) {
      return fail("fields", fmt::format("{} vs {} fields", s.fields().size(), d.fields().size()));
    }
    for (std::size_t i = 0; i < s.fields().size(); ++i) {
      const auto& [sn, sv] = s.fields()[i];
      const auto& [dn, dv] = d.fields()[i];
      if (sn != dn) return fail("field order", fmt::format("field #{} is '{}' vs '{}'", i, sn, dn));
      PathScope scope(path_, std::string_view(sn));
      visit(sv, dv);
    }
  }

  // A DTensor stages as its spec and rank (its coordinate in the mesh), unchanged, over a staged
  // local tensor (checked like any tensor).
  void visit_dtensor(const DTensor& s, const DTensor& d) {
    check(s.spec() == d.spec(), "spec", fmt::format("source {} vs staged {}", s.spec().str(), d.spec().str()));
    check(s.rank() == d.rank(), "rank",
          fmt::format("the source is rank {}'s DTensor, the staged one claims rank {}", s.rank(), d.rank()));
    PathScope scope(path_, std::string_view("_local_tensor"));
    visit_tensor(s.local(), d.local());
  }

  // A ShardedTensor stages as its metadata (global and per shard, offsets, sizes and placements),
  // unchanged, over staged local shards (each checked like any tensor).
  void visit_sharded_tensor(const ShardedTensor& s, const ShardedTensor& d) {
    check(s.rank() == d.rank(), "rank", fmt::format("{} vs {}", s.rank(), d.rank()));
    check(s.metadata() == d.metadata(), "metadata", fmt::format("source {} vs staged {}", s.describe(), d.describe()));
    if (s.local_shards().size() != d.local_shards().size()) {
      return fail("local shards", fmt::format("{} vs {}", s.local_shards().size(), d.local_shards().size()));
    }
    for (std::size_t i = 0; i < s.local_shards().size(); ++i) {
      const LocalTensorShard& a = s.local_shards()[i];
      const LocalTensorShard& b = d.local_shards()[i];
      PathScope shards(path_, std::string_view("local_shards"));
      PathScope scope(path_, i);
      check(
          a.metadata == b.metadata, "shard metadata",
          fmt::format("offsets [{}] sizes [{}] on {} vs offsets [{}] sizes [{}] on {}",
                      fmt::join(a.metadata.offsets, ", "), fmt::join(a.metadata.sizes, ", "), a.metadata.placement(),
                      fmt::join(b.metadata.offsets, ", "), fmt::join(b.metadata.sizes, ", "), b.metadata.placement()));
      visit_tensor(a.tensor, b.tensor);
    }
  }

  void visit_tensor(const Tensor& s, const Tensor& d) {
    if (!d.device().is_cpu()) return fail("device", "staged tensor is on " + d.device().str());
    if (cuda::available() && d.storage().data() != nullptr &&
        cuda::pointer_kind(d.storage().data()) == cuda::PointerKind::device) {
      return fail("device", "staged tensor claims cpu but its memory is CUDA device memory");
    }
    check(s.dtype() == d.dtype(), "dtype", fmt::format("{} vs {}", dtype_name(s.dtype()), dtype_name(d.dtype())));
    // Staged copies are plain tensors that do not require grad, parameters included (spec C.1.10).
    check(
        !d.is_parameter() && !d.requires_grad(), "plain tensor",
        fmt::format("the staged tensor is {}{} (source: {}); a staged copy is a plain tensor that does not require "
                    "grad",
                    d.is_parameter() ? "a parameter" : "a plain tensor", d.requires_grad() ? " that requires grad" : "",
                    s.is_parameter() ? "a parameter" : "a plain tensor"));
    check(std::equal(s.sizes().begin(), s.sizes().end(), d.sizes().begin(), d.sizes().end()), "sizes",
          s.describe() + " vs " + d.describe());
    check(std::equal(s.strides().begin(), s.strides().end(), d.strides().begin(), d.strides().end()), "strides",
          s.describe() + " vs " + d.describe());
    check(s.storage_offset() == d.storage_offset(), "storage offset",
          fmt::format("{} vs {}", s.storage_offset(), d.storage_offset()));
    if (failures_at_path()) return;
    if (s.numel() > 0) {
      check(d.storage().defined() && d.addressed_bytes() <= d.storage().nbytes(), "bounds",
            "staged view does not fit in its storage");
      if (failures_at_path()) return;
      if (s.to_bytes() != d.to_bytes())
        fail("bytes", "staged elements differ from the source bytes: " + describe_difference(d, s));
    }
    visit_storage(s.storage(), d.storage());
    visit_attributes(s, d);
  }

  void visit_storage(const Storage& s, const Storage& d) {
    if (!s.defined()) return;
    if (!d.defined()) return fail("storage", "staged tensor has no storage");
    check(s.nbytes() == d.nbytes(), "storage size",
          fmt::format("source storage holds {} bytes, staged storage {} bytes", s.nbytes(), d.nbytes()));
    auto [it, first] = staged_storage_of_.emplace(s.identity(), StagedStorage{d, path_.str()});
    if (!first) {
      if (!it->second.storage.is_alias_of(d)) {
        fail("storage sharing",
             fmt::format("the source shares its storage with {} but the staged tensors do not share one",
                         it->second.path));
      }
      return;
    }
    auto [rit, fresh] = source_storage_of_.emplace(d.identity(), StagedStorage{s, path_.str()});
    if (!fresh && !rit->second.storage.is_alias_of(s)) {
      return fail("storage sharing", fmt::format("staged tensor shares a storage with {} although their sources do not",
                                                 rit->second.path));
    }
    if (s.nbytes() == d.nbytes() && s.nbytes() > 0) {
      const std::vector<std::byte> source_bytes = storage_bytes(s);
      const std::vector<std::byte> staged_bytes = storage_bytes(d);
      if (source_bytes != staged_bytes) {
        fail("storage bytes", "the staged storage is not a byte-exact copy of the whole source storage: " +
                                  byte_difference(source_bytes, staged_bytes));
      }
    }
    sources_.push_back(s);
  }

  void visit_attributes(const Tensor& s, const Tensor& d) {
    const auto& sa = s.attrs();
    const auto& da = d.attrs();
    if (sa.size() != da.size()) {
      return fail("attributes", fmt::format("{} attribute(s) on the source, {} staged", sa.size(), da.size()));
    }
    for (std::size_t i = 0; i < sa.size(); ++i) {
      if (sa[i].first != da[i].first) {
        return fail("attributes", fmt::format("attribute #{} is '{}' vs '{}'", i, sa[i].first, da[i].first));
      }
      PathScope scope(path_, std::string_view(sa[i].first));
      visit(sa[i].second, da[i].second);
    }
  }

  [[nodiscard]] bool failures_at_path() const { return !failures.empty() && failures.back().path == path_.str(); }

  // Distinct staged storages must not overlap each other or any source storage.
  void check_address_ranges() {
    struct Range {
      std::uintptr_t begin, end;
      std::string what;
    };
    std::vector<Range> ranges;
    for (const auto& [id, staged] : source_storage_of_) {
      (void)id;
      const Storage& d = staged_storage_of_.at(staged.storage.identity()).storage;
      if (d.nbytes() == 0 || d.data() == nullptr) continue;
      const auto b = reinterpret_cast<std::uintptr_t>(d.data());
      ranges.push_back({b, b + d.nbytes(), "staged storage of " + staged.path});
    }
    for (const Storage& s : sources_) {
      if (s.nbytes() == 0 || s.data() == nullptr || !s.device().is_cpu()) continue;
      const auto b = reinterpret_cast<std::uintptr_t>(s.data());
      ranges.push_back({b, b + s.nbytes(), "a source storage"});
    }
    std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
      if (ranges[i].begin < ranges[i - 1].end) {
        failures.push_back({"<state dict>", "storage independence",
                            fmt::format("{} overlaps {} in memory", ranges[i].what, ranges[i - 1].what)});
      }
    }
  }

  void check_memory() {
    std::vector<std::pair<std::string, Storage>> staged;
    for (const auto& [id, entry] : source_storage_of_) {
      (void)id;
      staged.emplace_back(entry.path, staged_storage_of_.at(entry.storage.identity()).storage);
    }
    check_memory_of(staged, memory_, failures);
  }

 public:
  static void check_memory_of(const std::vector<std::pair<std::string, Storage>>& storages,
                              const MemoryExpectation& memory, std::vector<Failure>& out) {
    const probe::MemoryMap map = probe::MemoryMap::snapshot();
    std::size_t forks = 0;
    for (const auto& [path, d] : storages) {
      const std::size_t n = d.nbytes();
      if (n == 0 || d.data() == nullptr) continue;
      const bool want_pinned = memory.pinned && n >= memory.pin_memory_min_bytes;
      const probe::Verdict locked = probe::page_locked(d.data(), n, &map);
      if (locked.yes != want_pinned) {
        out.push_back(
            {path, "page-locked",
             fmt::format("expected {}page-locked ({} bytes, pin_memory={}, pin_memory_min_bytes={}); probe: {}",
                         want_pinned ? "" : "not ", n, memory.pinned, memory.pin_memory_min_bytes, locked.detail)});
      }
      const probe::Verdict shared = probe::shared_mapping(d.data(), n, &map);
      if (shared.yes != memory.shared) {
        out.push_back(
            {path, "shared memory",
             fmt::format("expected {}a shared mapping; probe: {}", memory.shared ? "" : "not ", shared.detail)});
      } else if (memory.shared && forks < kMaxForkProbes) {
        ++forks;
        const probe::Verdict visible = probe::fork_write_visible(d.data(), n);
        if (!visible.yes) out.push_back({path, "shared memory", visible.detail});
      }
    }
  }

 private:
  const MemoryExpectation& memory_;
  PathStack path_;
  std::unordered_map<const void*, const void*> staged_node_of_;
  std::unordered_map<const void*, const void*> source_node_of_;
  std::unordered_map<const void*, StagedStorage> staged_storage_of_;  // source storage -> staged
  std::unordered_map<const void*, StagedStorage> source_storage_of_;  // staged storage -> source
  std::vector<Storage> sources_;
};

void collect_leaves(const Value& v, PathStack& path, std::unordered_map<const void*, bool>& seen,
                    std::vector<TensorLeaf>& out) {
  const void* id = v.identity();
  if (id != nullptr && !seen.emplace(id, true).second) return;
  switch (v.kind()) {
    case Value::Kind::tensor: {
      const Tensor& t = v.as_tensor();
      out.push_back({path.str(), t});
      for (const auto& [name, attr] : t.attrs()) {
        PathScope s(path, std::string_view(name));
        collect_leaves(attr, path, seen, out);
      }
      return;
    }
    case Value::Kind::list:
    case Value::Kind::tuple: {
      const auto& items = v.kind() == Value::Kind::list ? v.as_list().items : v.as_tuple().items();
      for (std::size_t i = 0; i < items.size(); ++i) {
        PathScope s(path, i);
        collect_leaves(items[i], path, seen, out);
      }
      return;
    }
    case Value::Kind::dict:
      for (const auto& [k, item] : v.as_dict().entries()) {
        PathScope s(path, k);
        collect_leaves(item, path, seen, out);
      }
      return;
    case Value::Kind::object:
      for (const auto& [n, item] : v.as_object().fields()) {
        PathScope s(path, std::string_view(n));
        collect_leaves(item, path, seen, out);
      }
      return;
    case Value::Kind::dtensor: {
      PathScope s(path, std::string_view("_local_tensor"));
      out.push_back({path.str(), v.as_dtensor_node()->local()});
      return;
    }
    case Value::Kind::sharded_tensor: {
      const auto& shards = v.as_sharded_tensor_node()->local_shards();
      PathScope s(path, std::string_view("local_shards"));
      for (std::size_t i = 0; i < shards.size(); ++i) {
        PathScope at(path, i);
        out.push_back({path.str(), shards[i].tensor});
      }
      return;
    }
    default: return;
  }
}

}  // namespace

std::vector<Failure> verify_staged(const Value& source, const Value& staged, const MemoryExpectation& memory) {
  StrictVerifier v(memory);
  v.visit(source, staged);
  v.finish();
  return std::move(v.failures);
}

std::vector<Failure> verify_memory_kinds(const Value& staged, const MemoryExpectation& memory) {
  std::vector<std::pair<std::string, Storage>> storages;
  std::unordered_map<const void*, bool> seen;
  for (const TensorLeaf& leaf : tensor_leaves(staged)) {
    const Storage& s = leaf.tensor.storage();
    if (s.defined() && seen.emplace(s.identity(), true).second) storages.emplace_back(leaf.path, s);
  }
  std::vector<Failure> out;
  StrictVerifier::check_memory_of(storages, memory, out);
  return out;
}

std::vector<TensorLeaf> tensor_leaves(const Value& root) {
  std::vector<TensorLeaf> out;
  PathStack path;
  std::unordered_map<const void*, bool> seen;
  collect_leaves(root, path, seen, out);
  return out;
}

}  // namespace stagekit::conformance
