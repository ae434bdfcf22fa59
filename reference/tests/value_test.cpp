#include <gtest/gtest.h>

#include "stagekit/core/error.h"
#include "stagekit/core/state_path.h"
#include "stagekit/core/value.h"

namespace stagekit {
namespace {

TEST(Value, DictKeepsInsertionOrderAndReplacesInPlace) {
  Value d = Value::dict({{"b", 1}, {"a", 2}});
  d.as_dict().set(std::int64_t{3}, "three");
  d.as_dict().set("b", 10);
  const auto& e = d.as_dict().entries();
  ASSERT_EQ(e.size(), 3U);
  EXPECT_EQ(dict_key_str(e[0].first), "b");
  EXPECT_EQ(e[0].second.as_int(), 10);
  EXPECT_EQ(dict_key_str(e[2].first), "3");
  EXPECT_TRUE(d.as_dict().contains(std::int64_t{3}));
  EXPECT_FALSE(d.as_dict().contains(std::string("3")));
  EXPECT_THROW((void)d["zz"], InvalidArgument);
}

TEST(Value, NodesAreSharedAndScalarsAreNot) {
  Value list = Value::list({1, 2});
  Value alias = list;
  alias.as_list().items.push_back(3);
  EXPECT_EQ(list.as_list().items.size(), 3U);
  EXPECT_EQ(list.identity(), alias.identity());
  EXPECT_NE(Value::list({}).identity(), Value::list({}).identity());
  EXPECT_EQ(Value(5).identity(), nullptr);
  EXPECT_EQ(Value("s").kind(), Value::Kind::string);
  EXPECT_EQ(Value(true).kind(), Value::Kind::boolean);
  EXPECT_EQ(Value(2.0f).kind(), Value::Kind::floating);
  EXPECT_THROW((void)Value(1).as_string(), InvalidArgument);
}

TEST(Value, FrozenObjectsRefuseAssignment) {
  Value o = Value::object("FrozenDataClass", {{"value", 100}}, true);
  EXPECT_THROW(o.as_object().set_field("value", 1), InvalidArgument);
  EXPECT_EQ(o["value"].as_int(), 100);
  Value m = Value::object("Plain", {{"x", 1}});
  m.as_object().set_field("y", 2);
  EXPECT_EQ(m.as_object().fields().back().first, "y");
  EXPECT_THROW(Object("Twice", {{"x", 1}, {"x", 2}}, false), InvalidArgument);
}

TEST(Value, NamedTuplesNeedOneUniqueFieldNamePerItem) {
  const Value p = Value::named_tuple("my.Point", {{"x", 1}, {"y", 2.5}});
  EXPECT_TRUE(p.as_tuple().is_named());
  EXPECT_EQ(p.as_tuple().type_name(), "my.Point");
  EXPECT_EQ(p.as_tuple().field_names(), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(p.at(1).as_double(), 2.5);
  EXPECT_FALSE(Value::tuple({1}).as_tuple().is_named());
  EXPECT_THROW(Tuple({Value(1)}, "my.P", {"x", "y"}), InvalidArgument);
  EXPECT_THROW(Tuple({Value(1), Value(2)}, "my.P", {"x", "x"}), InvalidArgument);
  EXPECT_THROW(Tuple({Value(1)}, "", {"x"}), InvalidArgument);
}

TEST(Value, SetsHoldUniqueHashablePlainValues) {
  const Value s = Value::set({1, "1", 1.0, Value::tuple({1, "a"}), Value()});
  EXPECT_EQ(s.kind(), Value::Kind::set);
  EXPECT_TRUE(s.is_container());
  EXPECT_EQ(s.as_set().items().size(), 5U);
  EXPECT_FALSE(s.as_set().frozen());
  EXPECT_TRUE(Value::set({}, true).as_set().frozen());
  EXPECT_THROW((void)Value::set({1, 2, 1}), InvalidArgument);
  EXPECT_THROW((void)Value::set({Value::list({})}), InvalidArgument);
  EXPECT_THROW((void)Value::set({Tensor::zeros({1}, DType::float32)}), InvalidArgument);
  EXPECT_THROW((void)Value::set({Value::tuple({Value::dict()})}), InvalidArgument);
  EXPECT_FALSE(same_plain_value(Value(0.0), Value(-0.0))) << "floats compare by their bits";
  EXPECT_TRUE(same_plain_value(Value::tuple({1, "a"}), Value::tuple({1, "a"})));
  EXPECT_FALSE(same_plain_value(Value::tuple({1}), Value::named_tuple("my.T", {{"a", 1}})));
}

TEST(Value, DictSubclassesAndSlotsObjectsKeepTheirType) {
  Value d = Value::dict({{"a", 1}});
  EXPECT_TRUE(d.as_dict().type_name().empty());
  d.as_dict().set_type_name("collections.OrderedDict");
  const auto copy = Dict::with_keys_of(d.as_dict(), {Value(2)});
  EXPECT_EQ(copy->type_name(), "collections.OrderedDict") << "with_keys_of keeps the type";
  EXPECT_EQ(Dict(d.as_dict()).type_name(), "collections.OrderedDict");
  EXPECT_TRUE(d.as_dict().default_factory().empty());
  d.as_dict().set_type_name("collections.defaultdict");
  d.as_dict().set_default_factory("builtins.list");
  EXPECT_EQ(Dict::with_keys_of(d.as_dict(), {Value(2)})->default_factory(), "builtins.list")
      << "with_keys_of keeps a defaultdict's factory";
  EXPECT_EQ(Dict(d.as_dict()).default_factory(), "builtins.list");
  Dict assigned;
  assigned = d.as_dict();
  EXPECT_EQ(assigned.default_factory(), "builtins.list");
  const Value o = Value::slots_object("my.Slotted", {{"x", 1}});
  EXPECT_TRUE(o.as_object().slots());
  EXPECT_FALSE(o.as_object().frozen());
  EXPECT_THROW(Object("my.S", {}, /*frozen=*/true, /*slots=*/true), InvalidArgument);
}

TEST(PathStack, FormatsKeysFieldsAndIndices) {
  PathStack p;
  EXPECT_EQ(p.str(), "<root>");
  const DictKey recursive(std::string("recursive"));
  const DictKey seven(std::int64_t{7});
  p.push_key(recursive);
  p.push_name("type");
  p.push_name("tensor1");
  EXPECT_EQ(p.str(), "recursive.type.tensor1");
  p.pop();
  p.push_index(3);
  p.push_key(seven);
  EXPECT_EQ(p.str(), "recursive.type[3][7]");
  EXPECT_EQ(p.str(1), "recursive");
}

}  // namespace
}  // namespace stagekit
