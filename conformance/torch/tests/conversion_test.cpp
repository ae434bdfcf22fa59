// The torch bridge's conversion, checked independently of any stager: no tensor byte is copied
// either way (addresses compared), storage identity survives the round trip, every kind of node
// keeps its kind, order, keys, layout and aliasing, and what cannot be converted says where.
#include <gtest/gtest.h>

#include <pybind11/stl.h>
#include <cstring>

#include "../bridge/conversion.h"
#include "../bridge/python_runtime.h"
#include "stagekit/conformance/implementation.h"
#include "stagekit/core/error.h"

namespace stagekit::torch_bridge {
namespace {

class Conversion : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { ensure_python(); }
  py::gil_scoped_acquire gil_;
};

std::uintptr_t data_ptr(const py::handle& t) { return py::cast<std::uintptr_t>(t.attr("data_ptr")()); }
std::int64_t storage_key(const py::handle& t) {
  return py::cast<std::int64_t>(modules().compat.attr("storage_key")(modules().compat.attr("untyped_storage")(t)));
}

TEST_F(Conversion, NoByteIsCopiedAndIdentityAndLayoutSurviveTheRoundTrip) {
  const Tensor base = Tensor::random({4, 6}, DType::float32, 7);
  const Tensor column = base.slice(1, 1, 6, 2);  // offset 1, strides (6, 2)
  Tensor with_attr = Tensor::random({3}, DType::bfloat16, 8);
  with_attr.set_attr("scale", Value(0.5));
  const Value shared_list = Value::list({Value(1), Value("two")});
  auto by_int = std::make_shared<Dict>();
  by_int->set(DictKey(std::int64_t{3}), Value(Bytes{{std::byte{1}, std::byte{2}}}));
  const Value sd = Value::dict({{"base", base},
                                {"column", column},
                                {"attr", with_attr},
                                {"pair", Value::tuple({Value(true), Value(nullptr)})},
                                {"a", shared_list},
                                {"b", shared_list},
                                {"ints", Value(by_int)},
                                {"cfg", Value::object("my.Config", {{"lr", 0.1}, {"betas", base}}, true)}});

  const py::object t = to_torch(sd);
  const py::dict d = t;
  EXPECT_EQ(data_ptr(d["base"]), reinterpret_cast<std::uintptr_t>(base.data_ptr())) << "to torch: no copy";
  EXPECT_EQ(data_ptr(d["column"]), reinterpret_cast<std::uintptr_t>(column.data_ptr()));
  EXPECT_EQ(storage_key(d["base"]), storage_key(d["column"])) << "one torch storage per stagekit storage";
  EXPECT_EQ(py::cast<std::int64_t>(d["column"].attr("storage_offset")()), 1);
  EXPECT_TRUE(py::object(d["a"]).is(py::object(d["b"]))) << "a node reached twice is one Python object";
  EXPECT_TRUE(py::isinstance<py::tuple>(d["pair"]));
  EXPECT_EQ(py::cast<double>(d["attr"].attr("scale")), 0.5);
  EXPECT_TRUE(py::cast<bool>(modules().is_dataclass(d["cfg"])));
  EXPECT_TRUE(py::object(d["cfg"].attr("betas")).is(py::object(d["base"])));
  std::vector<std::string> keys;
  for (auto k : d) keys.push_back(py::cast<std::string>(py::str(k.first)));
  EXPECT_EQ(keys, (std::vector<std::string>{"base", "column", "attr", "pair", "a", "b", "ints", "cfg"}));

  const Value back = from_torch(t);
  EXPECT_TRUE(back["base"].as_tensor().storage().is_alias_of(base.storage())) << "back: the same stagekit storage";
  const Tensor col = back["column"].as_tensor();
  EXPECT_TRUE(col.storage().is_alias_of(base.storage()));
  EXPECT_EQ(col.storage_offset(), 1);
  EXPECT_EQ(std::vector<std::int64_t>(col.strides().begin(), col.strides().end()), (std::vector<std::int64_t>{6, 2}));
  EXPECT_TRUE(Tensor::equal(col, column));
  EXPECT_EQ(back["attr"].as_tensor().dtype(), DType::bfloat16);
  EXPECT_EQ(back["attr"].as_tensor().attr("scale").as_double(), 0.5);
  EXPECT_EQ(back["pair"].kind(), Value::Kind::tuple);
  EXPECT_EQ(back["a"].identity(), back["b"].identity()) << "aliasing survives the way back";
  EXPECT_EQ(back["ints"].as_dict().at(DictKey(std::int64_t{3})).as_bytes().data.size(), 2U);
  const Object& cfg = back["cfg"].as_object();
  EXPECT_EQ(cfg.type_name(), "my.Config");
  EXPECT_TRUE(cfg.frozen());
  ASSERT_EQ(cfg.fields().size(), 2U);
  EXPECT_EQ(cfg.fields()[0].first, "lr");
  EXPECT_TRUE(cfg.field("betas").as_tensor().storage().is_alias_of(base.storage()));
}

// The Python container kinds and parameters (spec C.1.9, C.1.10) become the Python types they stand for
// and come back as the same kinds, with their type information.
TEST_F(Conversion, PythonContainerKindsAndParametersKeepTheirTypes) {
  const Tensor weight = Tensor::random({2, 3}, DType::float32, 3);
  Value ordered = Value::dict({{"z", weight}, {"a", 1}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  Value defaults = Value::dict({{"seen", 1}});
  defaults.as_dict().set_type_name("collections.defaultdict");
  defaults.as_dict().set_default_factory("builtins.list");
  const Value sd = Value::dict({{"ordered", ordered},
                                {"defaults", defaults},
                                {"point", Value::named_tuple("my.Point", {{"x", 1}, {"w", weight}})},
                                {"tags", Value::set({"a", 2, Value::tuple({1, 2})})},
                                {"frozen", Value::set({"b"}, /*frozen=*/true)},
                                {"slotted", Value::slots_object("my.Slotted", {{"t", weight}, {"n", 4}})},
                                {"param", weight.as_parameter(/*requires_grad=*/true)},
                                {"frozen_param", weight.as_parameter(/*requires_grad=*/false)}});
  const py::object t = to_torch(sd);
  const py::dict d = t;
  const py::module_ collections = py::module_::import("collections");
  EXPECT_TRUE(py::type::of(d["ordered"]).is(collections.attr("OrderedDict")));
  EXPECT_TRUE(py::type::of(d["defaults"]).is(collections.attr("defaultdict")));
  EXPECT_TRUE(d["defaults"].attr("default_factory").is(py::module_::import("builtins").attr("list")));
  EXPECT_EQ(py::cast<std::vector<std::string>>(py::type::of(d["point"]).attr("_fields")),
            (std::vector<std::string>{"x", "w"}));
  EXPECT_TRUE(PySet_CheckExact(d["tags"].ptr()));
  EXPECT_TRUE(PyFrozenSet_CheckExact(d["frozen"].ptr()));
  EXPECT_FALSE(py::hasattr(d["slotted"], "__dict__")) << "an object with __slots__ has no __dict__";
  EXPECT_EQ(py::cast<int>(d["slotted"].attr("n")), 4);
  const py::object parameter = modules().torch.attr("nn").attr("Parameter");
  EXPECT_TRUE(py::isinstance(d["param"], parameter));
  EXPECT_TRUE(py::cast<bool>(d["param"].attr("requires_grad")));
  EXPECT_FALSE(py::cast<bool>(d["frozen_param"].attr("requires_grad")));
  EXPECT_EQ(data_ptr(d["param"]), reinterpret_cast<std::uintptr_t>(weight.data_ptr())) << "no copy";

  const Value back = from_torch(t);
  EXPECT_EQ(back["ordered"].as_dict().type_name(), "collections.OrderedDict");
  EXPECT_EQ(back["defaults"].as_dict().type_name(), "collections.defaultdict");
  EXPECT_EQ(back["defaults"].as_dict().default_factory(), "builtins.list");
  EXPECT_EQ(back["ordered"].as_dict().entries()[0].first, DictKey(std::string("z")));
  EXPECT_EQ(back["point"].as_tuple().type_name(), "my.Point");
  EXPECT_EQ(back["point"].as_tuple().field_names(), (std::vector<std::string>{"x", "w"}));
  EXPECT_FALSE(back["tags"].as_set().frozen());
  EXPECT_EQ(back["tags"].as_set().items().size(), 3U);
  EXPECT_TRUE(back["frozen"].as_set().frozen());
  const Object& slotted = back["slotted"].as_object();
  EXPECT_TRUE(slotted.slots());
  EXPECT_EQ(slotted.type_name(), "my.Slotted");
  EXPECT_TRUE(slotted.field("t").as_tensor().storage().is_alias_of(weight.storage()));
  EXPECT_TRUE(back["param"].as_tensor().is_parameter());
  EXPECT_TRUE(back["param"].as_tensor().requires_grad());
  EXPECT_TRUE(back["frozen_param"].as_tensor().is_parameter());
  EXPECT_FALSE(back["frozen_param"].as_tensor().requires_grad());
  EXPECT_FALSE(back["ordered"]["z"].as_tensor().is_parameter()) << "the plain tensor on the same storage stays plain";
}

TEST_F(Conversion, TorchMemoryIsWrappedNotCopiedAndKeptAliveByTheStagekitStorage) {
  py::object t = modules().torch.attr("arange")(12, py::arg("dtype") = modules().torch.attr("float64"));
  py::object view = t.attr("__getitem__")(py::slice(2, 12, 3));
  py::dict d;
  d["t"] = t;
  d["view"] = view;
  const std::uintptr_t address = data_ptr(t);
  Value back = from_torch(d);
  d = py::dict();
  t = py::object();
  view = py::object();
  const Tensor v = back["view"].as_tensor();
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(back["t"].as_tensor().storage().data()), address) << "no copy";
  EXPECT_TRUE(v.storage().is_alias_of(back["t"].as_tensor().storage())) << "one storage per torch storage";
  EXPECT_EQ(v.storage_offset(), 2);
  EXPECT_EQ(v.item({1}), 5.0) << "the memory outlives the torch objects";
}

TEST_F(Conversion, WhatCannotBeConvertedSaysWhere) {
  const Tensor good = Tensor::random({8}, DType::float32, 1);
  const Value shrunk = Tensor::unchecked(good.storage(), DType::float32, {4, 4}, {4, 1}, 0);
  try {
    (void)to_torch(Value::dict({{"layer", Value::dict({{"w", shrunk}})}}));
    FAIL() << "a view past its storage was converted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "layer.w");
    EXPECT_NE(std::string(e.what()).find("reaches byte 64 of a storage of 32 bytes"), std::string::npos) << e.what();
  }
  const bool has_float8 = py::cast<bool>(modules().compat.attr("DTYPES").attr("__contains__")("float8_e5m2"));
  if (!has_float8) {
    EXPECT_THROW((void)to_torch(Value::dict({{"f8", Tensor::zeros({2}, DType::float8_e5m2)}})),
                 conformance::InputNotRepresentable);
  }
  py::dict bad;
  bad["outer"] = py::dict();
  bad["outer"].attr("__setitem__")("fn", modules().torch.attr("zeros"));  // a builtin function
  try {
    (void)from_torch(bad);
    FAIL() << "a function was converted";
  } catch (const InvalidArgument& e) {
    EXPECT_EQ(e.path(), "outer.fn");
  }
}

// The conversions hold Python's cyclic collector off while they run (a collection mid-walk visits
// every object the case holds) and leave it as they found it, even when they fail.
TEST_F(Conversion, TheGarbageCollectorIsHeldOffDuringAConversionAndRestoredAfter) {
  const py::module_ gc = py::module_::import("gc");
  auto enabled = [&] { return py::cast<bool>(gc.attr("isenabled")()); };
  ASSERT_TRUE(enabled());
  py::object seen;
  {
    const GarbageCollectorPause pause;
    seen = py::bool_(enabled());
  }
  EXPECT_FALSE(py::cast<bool>(seen)) << "held off inside";
  EXPECT_TRUE(enabled()) << "restored after";
  const Value sd = Value::dict({{"w", Tensor::random({4}, DType::float32, 3)}});
  (void)from_torch(to_torch(sd));
  EXPECT_TRUE(enabled());
  py::dict bad;
  bad["fn"] = modules().torch.attr("zeros");
  EXPECT_THROW((void)from_torch(bad), InvalidArgument);
  EXPECT_TRUE(enabled()) << "restored after a failed conversion";
  gc.attr("disable")();
  (void)from_torch(to_torch(sd));
  EXPECT_FALSE(enabled()) << "a collector the caller turned off stays off";
  gc.attr("enable")();
}

}  // namespace
}  // namespace stagekit::torch_bridge
