// The path helpers: flat keys, duplicate keys, set_element's growth and refusals, round trips.
#include "stagekit/dist/state_dict_paths.h"

#include <gtest/gtest.h>

#include "stagekit/core/error.h"
#include "stagekit/core/tensor.h"

namespace stagekit::dist {
namespace {

TEST(StateDictPaths, FlattenJoinsKeysAndIndicesAndKeepsTheLeaves) {
  const Tensor t = Tensor::random({2}, DType::float32, 1);
  auto root = std::make_shared<Dict>();
  root->set(std::string("a"), Value::list({Value(std::int64_t{1}), Value::dict({{"b", t}})}));
  root->set(std::int64_t{3}, Value::tuple({}));
  const FlatStateDict flat = flatten_state_dict(Value(root));
  ASSERT_EQ(flat.mapping.size(), 3U);
  EXPECT_EQ(flat.mapping[0].first, "a.0");
  EXPECT_EQ(flat.mapping[1].first, "a.1.b");
  EXPECT_EQ(flat.mapping[2].first, "3") << "an integer key is written as its digits";
  EXPECT_EQ(flat.mapping[1].second, (ObjectPath{std::string("a"), std::int64_t{1}, std::string("b")}));
  EXPECT_EQ(flat.flat.as_dict().at(std::string("a.1.b")).identity(), Value(t).identity());
  EXPECT_EQ(flat.flat.as_dict().at(std::string("3")).kind(), Value::Kind::tuple) << "an empty container is a leaf";
}

TEST(StateDictPaths, ADuplicatedFlatKeyIsRefused) {
  const Value sd = Value::dict({{"a", Value::dict({{"b", Value(std::int64_t{1})}})}, {"a.b", Value(std::int64_t{2})}});
  try {
    (void)flatten_state_dict(sd);
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("duplicated flatten key a.b"), std::string::npos) << e.what();
  }
}

TEST(StateDictPaths, SetElementGrowsListsAndRefusesKindMismatches) {
  Value root = Value::dict({{"x", Value(std::int64_t{1})}});
  set_element(root, {std::string("l"), std::int64_t{1}}, Value(std::string("v")));
  EXPECT_TRUE(root["l"].at(0).is_none());
  EXPECT_EQ(root["l"].at(1).as_string(), "v");
  set_element(root, {std::string("l"), std::int64_t{0}}, Value(std::int64_t{7}));
  EXPECT_EQ(root["l"].at(0).as_int(), 7) << "an existing list is written into, not replaced";
  EXPECT_EQ(root["l"].at(1).as_string(), "v");
  EXPECT_THROW(set_element(root, {std::string("x"), std::string("y")}, Value()), InvalidArgument);
  EXPECT_THROW(set_element(root, {std::string("l"), std::string("y")}, Value()), InvalidArgument);
  EXPECT_THROW(set_element(root, {}, Value()), InvalidArgument);
}

TEST(StateDictPaths, UnflattenInvertsFlattenWithTuplesAsLists) {
  const Tensor t = Tensor::random({3}, DType::bfloat16, 2);
  const Value sd = Value::dict(
      {{"m", Value::dict({{"w", t}, {"pair", Value::tuple({t, Value(2.5)})}})}, {"s", Value(std::int64_t{1})}});
  const FlatStateDict flat = flatten_state_dict(sd);
  const Value back = unflatten_state_dict(flat.flat, flat.mapping);
  EXPECT_EQ(back["m"]["w"].identity(), Value(t).identity());
  EXPECT_EQ(back["m"]["pair"].kind(), Value::Kind::list);
  EXPECT_EQ(back["m"]["pair"].at(1).as_double(), 2.5);
  EXPECT_EQ(back["s"].as_int(), 1);
  EXPECT_THROW((void)unflatten_state_dict(Value::dict(), flat.mapping), InvalidArgument) << "a missing flat key";
}

}  // namespace
}  // namespace stagekit::dist
