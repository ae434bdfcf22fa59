// replica_test_support.cpp — the deep tree comparison, storage copies, sample state dicts and the
// temporary directory used by the replica format tests.
#include "replica_test_support.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <set>

#include <fmt/format.h>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"

namespace stagekit::replicate::testing {
namespace {

std::vector<std::byte> storage_bytes(const Storage& s) {
  std::vector<std::byte> out(s.nbytes());
  if (!out.empty()) std::memcpy(out.data(), s.data(), out.size());
  return out;
}

// Pairs nodes (or storages) of the original with nodes of the copy; the pairing must be one to one.
class IdentityPairs {
 public:
  // True when `e` is met for the first time.
  bool pair(const void* e, const void* a, const std::string& path) {
    const auto [it, inserted] = forward_.emplace(e, a);
    EXPECT_EQ(it->second, a) << path << ": one node in the original is two nodes in the copy";
    const auto [rit, rinserted] = backward_.emplace(a, e);
    EXPECT_EQ(rit->second, e) << path << ": two nodes in the original are one node in the copy";
    (void)rinserted;
    return inserted;
  }

 private:
  std::map<const void*, const void*> forward_;
  std::map<const void*, const void*> backward_;
};

class TreeComparison {
 public:
  void value(const Value& e, const Value& a, const std::string& path) {
    ASSERT_EQ(e.kind(), a.kind()) << path << ": " << value_kind_name(e.kind()) << " vs " << value_kind_name(a.kind());
    if (e.identity() != nullptr && !nodes_.pair(e.identity(), a.identity(), path)) return;
    switch (e.kind()) {
      case Value::Kind::none: return;
      case Value::Kind::boolean: EXPECT_EQ(e.as_bool(), a.as_bool()) << path; return;
      case Value::Kind::integer: EXPECT_EQ(e.as_int(), a.as_int()) << path; return;
      case Value::Kind::floating: {
        std::uint64_t eb = 0;
        std::uint64_t ab = 0;
        const double ed = e.as_double();
        const double ad = a.as_double();
        std::memcpy(&eb, &ed, 8);
        std::memcpy(&ab, &ad, 8);
        EXPECT_EQ(eb, ab) << path << ": float bits differ";
        return;
      }
      case Value::Kind::string: EXPECT_EQ(e.as_string(), a.as_string()) << path; return;
      case Value::Kind::bytes: EXPECT_EQ(e.as_bytes(), a.as_bytes()) << path; return;
      case Value::Kind::tensor: tensor(e.as_tensor(), a.as_tensor(), path); return;
      case Value::Kind::list: items(e.as_list().items, a.as_list().items, path); return;
      case Value::Kind::tuple:
        EXPECT_EQ(e.as_tuple().type_name(), a.as_tuple().type_name()) << path;
        EXPECT_EQ(e.as_tuple().field_names(), a.as_tuple().field_names()) << path;
        items(e.as_tuple().items(), a.as_tuple().items(), path);
        return;
      case Value::Kind::set:
        EXPECT_EQ(e.as_set().frozen(), a.as_set().frozen()) << path;
        items(e.as_set().items(), a.as_set().items(), path);
        return;
      case Value::Kind::dict: {
        EXPECT_EQ(e.as_dict().type_name(), a.as_dict().type_name()) << path;
        EXPECT_EQ(e.as_dict().default_factory(), a.as_dict().default_factory()) << path;
        const auto& ee = e.as_dict().entries();
        const auto& ae = a.as_dict().entries();
        ASSERT_EQ(ee.size(), ae.size()) << path;
        for (std::size_t i = 0; i < ee.size(); ++i) {
          ASSERT_EQ(ee[i].first, ae[i].first) << path << " entry " << i;
          value(ee[i].second, ae[i].second, path + "." + dict_key_str(ee[i].first));
        }
        return;
      }
      case Value::Kind::object: {
        const Object& eo = e.as_object();
        const Object& ao = a.as_object();
        EXPECT_EQ(eo.type_name(), ao.type_name()) << path;
        EXPECT_EQ(eo.frozen(), ao.frozen()) << path;
        EXPECT_EQ(eo.slots(), ao.slots()) << path;
        ASSERT_EQ(eo.fields().size(), ao.fields().size()) << path;
        for (std::size_t i = 0; i < eo.fields().size(); ++i) {
          ASSERT_EQ(eo.fields()[i].first, ao.fields()[i].first) << path;
          value(eo.fields()[i].second, ao.fields()[i].second, path + "." + eo.fields()[i].first);
        }
        return;
      }
      case Value::Kind::dtensor: {
        const DTensor& ed = *e.as_dtensor_node();
        const DTensor& ad = *a.as_dtensor_node();
        EXPECT_EQ(ed.spec(), ad.spec()) << path << ": " << ed.spec().str() << " vs " << ad.spec().str();
        EXPECT_EQ(ed.rank(), ad.rank()) << path;
        tensor(ed.local(), ad.local(), path + ".<local>");
        return;
      }
      case Value::Kind::sharded_tensor: {
        const ShardedTensor& es = *e.as_sharded_tensor_node();
        const ShardedTensor& as = *a.as_sharded_tensor_node();
        EXPECT_EQ(es.metadata(), as.metadata()) << path;
        EXPECT_EQ(es.rank(), as.rank()) << path;
        ASSERT_EQ(es.local_shards().size(), as.local_shards().size()) << path;
        for (std::size_t i = 0; i < es.local_shards().size(); ++i) {
          EXPECT_EQ(es.local_shards()[i].metadata, as.local_shards()[i].metadata) << path << "[" << i << "]";
          tensor(es.local_shards()[i].tensor, as.local_shards()[i].tensor, fmt::format("{}[{}]", path, i));
        }
        return;
      }
      case Value::Kind::opaque: FAIL() << path << ": opaque in a compared tree";
    }
  }

 private:
  void tensor(const Tensor& e, const Tensor& a, const std::string& path) {
    // A local tensor is reached through its DTensor or ShardedTensor: pair it here.
    if (!nodes_.pair(e.identity(), a.identity(), path) && visited_tensors_.count(e.identity()) != 0) return;
    visited_tensors_.insert(e.identity());
    EXPECT_EQ(e.dtype(), a.dtype()) << path;
    EXPECT_EQ(std::vector<std::int64_t>(e.sizes().begin(), e.sizes().end()),
              std::vector<std::int64_t>(a.sizes().begin(), a.sizes().end()))
        << path;
    EXPECT_EQ(std::vector<std::int64_t>(e.strides().begin(), e.strides().end()),
              std::vector<std::int64_t>(a.strides().begin(), a.strides().end()))
        << path;
    EXPECT_EQ(e.storage_offset(), a.storage_offset()) << path;
    EXPECT_TRUE(a.device().is_cpu()) << path;
    EXPECT_EQ(e.storage().defined(), a.storage().defined()) << path;
    if (e.storage().defined()) {
      storages_.pair(e.storage().identity(), a.storage().identity(), path + " (storage)");
      EXPECT_EQ(storage_bytes(e.storage()), storage_bytes(a.storage())) << path << ": storage bytes differ";
    }
    ASSERT_EQ(e.attrs().size(), a.attrs().size()) << path;
    for (std::size_t i = 0; i < e.attrs().size(); ++i) {
      ASSERT_EQ(e.attrs()[i].first, a.attrs()[i].first) << path;
      value(e.attrs()[i].second, a.attrs()[i].second, path + "." + e.attrs()[i].first);
    }
  }

  void items(const std::vector<Value>& e, const std::vector<Value>& a, const std::string& path) {
    ASSERT_EQ(e.size(), a.size()) << path;
    for (std::size_t i = 0; i < e.size(); ++i) value(e[i], a[i], fmt::format("{}[{}]", path, i));
  }

  IdentityPairs nodes_;
  IdentityPairs storages_;
  std::set<const void*> visited_tensors_;
};

}  // namespace

void expect_same_tree(const Value& expected, const Value& actual) {
  TreeComparison().value(expected, actual, "<root>");
}

std::vector<Storage> copy_storages(std::span<const Storage> storages) {
  std::vector<Storage> out;
  for (const Storage& s : storages) {
    Storage copy = Storage::allocate(s.nbytes());
    if (s.nbytes() > 0) copy_bytes(copy, 0, s, 0, s.nbytes());
    out.push_back(std::move(copy));
  }
  return out;
}

Value small_state_dict() {
  Tensor base = Tensor::random({4, 6}, DType::float32, 7);
  Tensor weight = Tensor::random({3}, DType::int64, 8);
  weight.set_attr("note", Value("w"));
  Value d = Value::dict({{"base", Value(base)},
                         {"view", Value(base.transpose(0, 1))},
                         {"weight", Value(weight)},
                         {"empty", Value(Tensor::empty({0}, DType::float16))},
                         {"meta", Value::list({Value(1), Value(2.5), Value("x")})}});
  return d;
}

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "stagekit-replica-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace stagekit::replicate::testing
