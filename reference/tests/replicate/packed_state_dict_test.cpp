// packed_state_dict_test.cpp — pack_state_dict()/unpack_state_dict(): exact round trips of every
// node kind, dtype and view, identity and storage sharing, DTensor and ShardedTensor metadata, and
// the errors for opaque leaves, cycles and mismatched storages.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>

#include "replica_test_support.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/replicate/packed_state_dict.h"
#include "stagekit/replicate/replica_file.h"

namespace stagekit::replicate {
namespace {

using testing::copy_storages;
using testing::expect_same_tree;

Value round_trip(const Value& v, const UnpackOptions& options = {}) {
  const PackedStateDict packed = pack_state_dict(v);
  return unpack_state_dict(packed.manifest, copy_storages(packed.storages), options);
}

// Both paths: in memory (pack/unpack) and through replica file bytes.
void expect_round_trip(const Value& v) {
  SCOPED_TRACE("pack/unpack");
  expect_same_tree(v, round_trip(v));
  SCOPED_TRACE("encode/decode replica");
  expect_same_tree(v, decode_replica(encode_replica(pack_state_dict(v))));
}

// The comparison the round trips rely on does see bit, identity and sharing differences.
TEST(ReplicaTestSupport, ComparisonSeesDifferences) {
  EXPECT_NONFATAL_FAILURE(expect_same_tree(Value(0.0), Value(-0.0)), "float bits differ");
  const Tensor t = Tensor::arange(4, DType::float32);
  EXPECT_NONFATAL_FAILURE(
      expect_same_tree(Value::list({Value(t), Value(t)}), Value::list({Value(t), Value(t.view({4}))})),
      "one node in the original is two nodes in the copy");
  EXPECT_NONFATAL_FAILURE(expect_same_tree(Value::list({Value(t), Value(t.narrow(0, 0, 2))}),
                                           Value::list({Value(t), Value(t.clone().narrow(0, 0, 2))})),
                          "(storage): one node in the original is two nodes in the copy");
}

TEST(PackedStateDict, ScalarsAreBitExact) {
  const double nan_payload = std::bit_cast<double>(std::uint64_t{0x7ff8000000abcdefULL});
  const double negative_nan = std::bit_cast<double>(std::uint64_t{0xfff0000000000001ULL});
  std::string with_nuls("a\0b\0", 4);
  Bytes bytes{{std::byte{0}, std::byte{255}, std::byte{0}}};
  const Value v = Value::list({Value(), Value(true), Value(false), Value(std::numeric_limits<std::int64_t>::min()),
                               Value(std::numeric_limits<std::int64_t>::max()), Value(-0.0), Value(0.0),
                               Value(nan_payload), Value(negative_nan), Value(std::numeric_limits<double>::infinity()),
                               Value(std::numeric_limits<double>::denorm_min()), Value(with_nuls), Value(""),
                               Value(bytes), Value(Bytes{})});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_EQ(std::bit_cast<std::uint64_t>(back.at(5).as_double()), std::bit_cast<std::uint64_t>(-0.0));
  EXPECT_EQ(back.at(11).as_string().size(), 4U);
}

TEST(PackedStateDict, DictKeysKeepTheirOrderAndKinds) {
  const Value v = Value::dict({{"z", Value(1)},
                               {std::int64_t{3}, Value(2)},
                               {"a", Value(3)},
                               {std::int64_t{-7}, Value(4)},
                               {std::string("\0k", 2), Value(5)}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  const auto& entries = back.as_dict().entries();
  ASSERT_EQ(entries.size(), 5U);
  EXPECT_EQ(std::get<std::string>(entries[0].first), "z");
  EXPECT_EQ(std::get<std::int64_t>(entries[1].first), 3);
  EXPECT_EQ(std::get<std::int64_t>(entries[3].first), -7);
}

TEST(PackedStateDict, EveryDtypeRoundTrips) {
  auto d = std::make_shared<Dict>();
  for (std::size_t i = 0; i < kAllDTypes.size(); ++i) {
    Tensor t = Tensor::empty({3, 5}, kAllDTypes[i]);
    t.random_bytes_(100 + i);
    d->set(std::string(dtype_name(kAllDTypes[i])), Value(t));
  }
  const Value v(d);
  expect_round_trip(v);
  const PackedStateDict packed = pack_state_dict(v);
  EXPECT_EQ(packed.storages.size(), kAllDTypes.size());
}

TEST(PackedStateDict, ZeroDimAndEmptyTensors) {
  const Value v =
      Value::dict({{"scalar", Value(Tensor::scalar(3.5, DType::float64))},
                   {"empty", Value(Tensor::empty({0}, DType::float32))},
                   {"empty3d", Value(Tensor::empty({2, 0, 3}, DType::int8))},
                   {"zero_bytes", Value(Tensor::from_storage(Storage::allocate(0), DType::bfloat16, {0}, {1}))},
                   {"no_storage", Value(Tensor::from_storage(Storage(), DType::float32, {0, 4}, {4, 1}))}});
  expect_round_trip(v);
  const PackedStateDict packed = pack_state_dict(v);
  EXPECT_EQ(packed.storages.size(), 4U);  // the undefined storage is not a storage
  EXPECT_EQ(packed.payload_bytes(), 8U);
  const Value back = round_trip(v);
  EXPECT_FALSE(back["no_storage"].as_tensor().storage().defined());
  EXPECT_EQ(back["scalar"].as_tensor().dim(), 0);
}

TEST(PackedStateDict, ViewsShareOneStorageAndKeepTheirLayout) {
  const Tensor base = Tensor::random({6, 8}, DType::float32, 3);
  const Tensor row = Tensor::random({1, 8}, DType::int32, 4);
  const Value v = Value::dict({{"base", Value(base)},
                               {"transposed", Value(base.transpose(0, 1))},
                               {"stepped", Value(base.slice(1, 1, 8, 3))},
                               {"offset", Value(base.narrow(0, 2, 3).narrow(1, 1, 4))},
                               {"expanded", Value(row.expand({5, 8}))},
                               {"strided", Value(base.as_strided({2, 2}, {9, 2}, 5))}});
  const PackedStateDict packed = pack_state_dict(v);
  EXPECT_EQ(packed.storages.size(), 2U);
  EXPECT_EQ(packed.payload_bytes(), 6U * 8 * 4 + 8 * 4);
  expect_round_trip(v);
  const Value back = round_trip(v);
  const Storage s = back["base"].as_tensor().storage();
  for (const char* name : {"transposed", "stepped", "offset", "strided"}) {
    EXPECT_TRUE(back[name].as_tensor().storage().is_alias_of(s)) << name;
  }
  EXPECT_FALSE(back["expanded"].as_tensor().storage().is_alias_of(s));
  EXPECT_EQ(back["expanded"].as_tensor().strides()[0], 0);
  EXPECT_EQ(back["offset"].as_tensor().storage_offset(), 17);
  EXPECT_TRUE(Tensor::equal(back["stepped"].as_tensor(), base.slice(1, 1, 8, 3)));
}

TEST(PackedStateDict, TensorAttributesAreValuesAndRecurse) {
  Tensor inner = Tensor::arange(4, DType::int16);
  Tensor t = Tensor::random({2, 2}, DType::float64, 9);
  t.set_attr("step", Value(12));
  t.set_attr("name", Value("layer.0"));
  t.set_attr("grad_scale", Value(inner));
  t.set_attr("meta", Value::dict({{"a", Value::list({Value(inner), Value(1.5)})}}));
  const Value v = Value::dict({{"t", Value(t)}, {"inner", Value(inner)}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_TRUE(back["t"].as_tensor().attr("grad_scale").as_tensor().is_same(back["inner"].as_tensor()));
}

TEST(PackedStateDict, ObjectsFrozenAndNot) {
  const Value v =
      Value::list({Value::object("Config", {{"lr", Value(0.1)}, {"name", Value("adam")}}, /*frozen=*/true),
                   Value::object("State", {{"step", Value(3)}, {"t", Value(Tensor::arange(3, DType::uint8))}}),
                   Value::object("Empty", {}, true)});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_TRUE(back.at(0).as_object().frozen());
  EXPECT_FALSE(back.at(1).as_object().frozen());
  EXPECT_THROW(back.at(0).as_object().set_field("lr", Value(1.0)), InvalidArgument);
}

TEST(PackedStateDict, PythonContainerKindsKeepTheirTypes) {
  Value ordered = Value::dict({{"b", Value(1)}, {"a", Value(Tensor::arange(3, DType::int16))}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  Value defaults = Value::dict({{"n", Value(2)}});
  defaults.as_dict().set_type_name("collections.defaultdict");
  defaults.as_dict().set_default_factory("builtins.dict");
  const Value tags = Value::set({Value("x"), Value(2), Value::tuple({Value(1.5), Value()})});
  const Value v = Value::dict(
      {{"ordered", ordered},
       {"defaults", defaults},
       {"point", Value::named_tuple("my.Point", {{"x", Value(1)}, {"t", Value(Tensor::arange(2, DType::float32))}})},
       {"tags", tags},
       {"tags_again", tags},
       {"frozen", Value::set({Value("y")}, true)},
       {"slotted", Value::slots_object("my.Slotted", {{"n", Value(3)}})}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_EQ(back["ordered"].as_dict().type_name(), "collections.OrderedDict");
  EXPECT_EQ(back["defaults"].as_dict().default_factory(), "builtins.dict") << "format 1.2: the factory too";
  EXPECT_EQ(back["point"].as_tuple().field_names(), (std::vector<std::string>{"x", "t"}));
  EXPECT_EQ(back["tags"].identity(), back["tags_again"].identity()) << "a set reached twice stays one node";
  EXPECT_TRUE(back["frozen"].as_set().frozen());
  EXPECT_TRUE(back["slotted"].as_object().slots());
}

TEST(PackedStateDict, ParametersArePackedPlainOrRefused) {
  const Tensor w = Tensor::random({4}, DType::float32, 5).as_parameter();
  const Value v = Value::dict({{"layer", Value::dict({{"w", Value(w)}})}});
  const Value back = round_trip(v);
  EXPECT_FALSE(back["layer"]["w"].as_tensor().is_parameter());
  EXPECT_TRUE(Tensor::equal(back["layer"]["w"].as_tensor(), w));
  try {
    (void)pack_state_dict(v, PackOptions{.refuse_parameters = true});
    FAIL() << "a parameter was packed although refused";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "layer.w");
  }
}

TEST(PackedStateDict, AMetaTensorIsRefusedByPath) {
  const Value v = Value::dict({{"layer", Value::dict({{"w", Tensor::empty({4}, DType::float32, Device::meta())}})}});
  try {
    (void)pack_state_dict(v);
    FAIL() << "a meta tensor was packed";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "layer.w");
    EXPECT_NE(std::string(e.what()).find("meta device"), std::string::npos) << e.what();
  }
}

TEST(PackedStateDict, TheSameNodeTwiceStaysOneNode) {
  const Tensor t = Tensor::random({3}, DType::float32, 1);
  const Value shared_dict = Value::dict({{"x", Value(1)}});
  const Value shared_list = Value::list({Value(t)});
  const Value shared_tuple = Value::tuple({Value(2), Value(t)});
  const Value shared_object = Value::object("O", {{"t", Value(t)}});
  const Value v = Value::dict({{"a", Value(t)},
                               {"b", Value(t)},
                               {"d1", shared_dict},
                               {"d2", shared_dict},
                               {"l", Value::list({shared_list, shared_list, shared_tuple})},
                               {"tu", shared_tuple},
                               {"o1", shared_object},
                               {"o2", shared_object}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_TRUE(back["a"].as_tensor().is_same(back["b"].as_tensor()));
  EXPECT_EQ(back["d1"].identity(), back["d2"].identity());
  EXPECT_EQ(back["l"].at(0).identity(), back["l"].at(1).identity());
  EXPECT_EQ(back["l"].at(2).identity(), back["tu"].identity());
  EXPECT_EQ(back["o1"].identity(), back["o2"].identity());
  EXPECT_TRUE(back["tu"].at(1).as_tensor().is_same(back["a"].as_tensor()));
  back["d1"].as_dict().set("y", Value(2));
  EXPECT_TRUE(back["d2"].as_dict().contains(DictKey(std::string("y"))));
}

TEST(PackedStateDict, TwoViewsOfOneStorageShareItAfterUnpack) {
  const Tensor base = Tensor::arange(10, DType::int64);
  const Value v = Value::list({Value(base.narrow(0, 0, 5)), Value(base.narrow(0, 5, 5))});
  const PackedStateDict packed = pack_state_dict(v);
  ASSERT_EQ(packed.storages.size(), 1U);
  EXPECT_TRUE(packed.storages[0].is_alias_of(base.storage()));
  const Value back = round_trip(v);
  EXPECT_TRUE(back.at(0).as_tensor().storage().is_alias_of(back.at(1).as_tensor().storage()));
  EXPECT_FALSE(back.at(0).as_tensor().is_same(back.at(1).as_tensor()));
  EXPECT_EQ(back.at(1).as_tensor().storage_offset(), 5);
}

TEST(PackedStateDict, DTensorKeepsSpecAndRank) {
  const Tensor full = Tensor::random({8, 6}, DType::float32, 11);
  const DeviceMesh mesh(DeviceType::cuda, {2, 2}, {3, 1, 0, 2});
  const auto d = DTensor::distribute(full, mesh, {Placement::shard(0), Placement::replicate()}, 1);
  const auto partial = DTensor::distribute(full, DeviceMesh::one_d(DeviceType::cpu, 3), {Placement::partial()}, 2);
  const Value v =
      Value::dict({{"d", Value(d)}, {"again", Value(d)}, {"p", Value(partial)}, {"local", Value(d->local())}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  const std::shared_ptr<DTensor> bd = back["d"].as_dtensor_node();
  EXPECT_EQ(bd->spec(), d->spec());
  EXPECT_EQ(bd->rank(), 1);
  EXPECT_EQ(back["again"].identity(), back["d"].identity());
  EXPECT_TRUE(bd->local().is_same(back["local"].as_tensor()));
  EXPECT_TRUE(Tensor::equal(bd->local(), d->local()));
}

std::shared_ptr<ShardedTensor> sample_sharded_tensor() {
  ShardedTensorMetadata metadata;
  metadata.size = {8, 4};
  metadata.dtype = DType::bfloat16;
  metadata.shards = {ShardMetadata{{0, 0}, {4, 4}, 0, Device::cuda(0)},
                     ShardMetadata{{4, 0}, {4, 4}, 1, Device::cuda(1)}};
  Tensor local = Tensor::random({4, 4}, DType::bfloat16, 5);
  return std::make_shared<ShardedTensor>(std::vector<LocalTensorShard>{{local, metadata.shards[1]}}, metadata, 1);
}

TEST(PackedStateDict, ShardedTensorKeepsItsMetadata) {
  const auto s = sample_sharded_tensor();
  const Value v = Value::dict({{"s", Value(s)}, {"again", Value(s)}});
  expect_round_trip(v);
  const Value back = round_trip(v);
  EXPECT_EQ(back["s"].identity(), back["again"].identity());
  EXPECT_EQ(back["s"].as_sharded_tensor_node()->local_shards()[0].metadata.placement(), "rank:1/cuda:1");
}

TEST(PackedStateDict, ShardPlacementRankMovesLocalShardsOnly) {
  const auto s = sample_sharded_tensor();
  UnpackOptions options;
  options.shard_placement_rank = 3;
  const Value back = round_trip(Value(s), options);
  const ShardedTensor& b = *back.as_sharded_tensor_node();
  EXPECT_EQ(b.rank(), 3);
  ASSERT_EQ(b.local_shards().size(), 1U);
  EXPECT_EQ(b.local_shards()[0].metadata.placement_rank, 3);
  EXPECT_EQ(b.local_shards()[0].metadata.placement_device, Device::cpu());
  EXPECT_EQ(b.local_shards()[0].metadata.placement(), "rank:3/cpu");
  EXPECT_EQ(b.local_shards()[0].metadata.offsets, s->local_shards()[0].metadata.offsets);
  EXPECT_EQ(b.metadata(), s->metadata());  // the global metadata is kept as sent
  EXPECT_TRUE(Tensor::equal(b.local_shards()[0].tensor, s->local_shards()[0].tensor));
}

TEST(PackedStateDict, OpaqueIsUnsupportedNamingThePath) {
  const Value v = Value::dict({{"opt", Value::dict({{"lock", Value::opaque("threading.Lock")}})}});
  try {
    (void)pack_state_dict(v);
    FAIL() << "expected Unsupported";
  } catch (const Unsupported& e) {
    EXPECT_EQ(e.path(), "opt.lock");
    EXPECT_NE(std::string(e.what()).find("threading.Lock"), std::string::npos) << e.what();
  }
}

TEST(PackedStateDict, CycleIsInvalidArgumentNamingThePath) {
  const Value inner = Value::list({Value(1)});
  const Value root = Value::dict({{"a", Value::dict({{"b", inner}})}});
  inner.as_list().items.push_back(root);
  try {
    (void)pack_state_dict(root);
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "a.b[1]");
    EXPECT_NE(std::string(e.what()).find("cycle"), std::string::npos) << e.what();
  }
  inner.as_list().items.pop_back();  // break the cycle so that the nodes are freed

  Tensor t = Tensor::arange(2, DType::int32);
  t.set_attr("self", Value::list({Value(t)}));
  EXPECT_THROW((void)pack_state_dict(Value::dict({{"t", Value(t)}})), InvalidArgument);
  t.set_attr("self", Value());
}

TEST(PackedStateDict, TooDeepIsRefused) {
  Value deep = Value(1);
  for (int i = 0; i < 1000; ++i) deep = Value::list({deep});
  expect_same_tree(deep, round_trip(deep));
  const Value deeper = Value::list({deep});
  EXPECT_THROW((void)pack_state_dict(deeper), InvalidArgument);
}

TEST(PackedStateDict, StoragesMustMatchTheManifest) {
  const Value v = Value::list({Value(Tensor::arange(4, DType::float32)), Value(Tensor::arange(2, DType::int8))});
  const PackedStateDict packed = pack_state_dict(v);
  EXPECT_EQ(manifest_storage_sizes(packed.manifest), (std::vector<std::uint64_t>{16, 2}));
  std::vector<Storage> storages = copy_storages(packed.storages);
  EXPECT_THROW((void)unpack_state_dict(packed.manifest, std::span(storages).first(1)), InvalidArgument);
  storages[1] = Storage::allocate(3);
  EXPECT_THROW((void)unpack_state_dict(packed.manifest, storages), InvalidArgument);
}

TEST(PackedStateDict, UnpackedTensorsUseTheGivenStorages) {
  const Value v = Value::list({Value(Tensor::arange(4, DType::float32))});
  const PackedStateDict packed = pack_state_dict(v);
  const std::vector<Storage> storages = copy_storages(packed.storages);
  const Value back = unpack_state_dict(packed.manifest, storages);
  EXPECT_TRUE(back.at(0).as_tensor().storage().is_alias_of(storages[0]));
}

}  // namespace
}  // namespace stagekit::replicate
