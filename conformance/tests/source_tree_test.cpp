// The source-tree comparison of the harness (harness/source_tree.h) sees every kind of change a
// stager could make to the caller's state dict, names where, and sees none in an untouched tree.
#include <gtest/gtest.h>

#include <string>

#include "source_tree.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"

namespace stagekit::conformance {
namespace {

Value sample() {
  const Tensor w = Tensor::arange(6, DType::float32).view({2, 3});
  Tensor with_attr = Tensor::zeros({2}, DType::int64);
  with_attr.set_attr("scale", Value(0.5));
  return Value::dict({{"w", Value(w)},
                      {"w_t", Value(w.transpose(0, 1))},
                      {"b", Value(with_attr)},
                      {"opt", Value::dict({{"step", Value(3)}, {"lrs", Value::list({Value(0.1), Value(0.2)})}})}});
}

std::string change_of(const Value& v, const std::vector<TreeNode>& before, std::string* path = nullptr) {
  const auto change = first_tree_change(v, before);
  if (!change) return {};
  if (path != nullptr) *path = change->first;
  return change->second;
}

TEST(SourceTree, AnUntouchedTreeHasNoChange) {
  const Value v = sample();
  const std::vector<TreeNode> before = source_tree(v);
  EXPECT_GT(before.size(), 8U);
  EXPECT_EQ(change_of(v, before), "");
  // Writing tensor bytes is not a change of the tree (storage_digests() sees that).
  Tensor w = v["w"].as_tensor();
  w.fill_(7);
  EXPECT_EQ(change_of(v, before), "");
}

TEST(SourceTree, EveryKindOfRewiringIsNamed) {
  std::string path;
  {
    const Value v = sample();
    const auto before = source_tree(v);
    v.as_dict().set(DictKey(std::string("w")), Value(v["w"].as_tensor().clone()));  // another tensor object
    EXPECT_NE(change_of(v, before, &path), "");
    EXPECT_EQ(path, "w");
  }
  {
    const Value v = sample();
    const auto before = source_tree(v);
    v["opt"].as_dict().set(DictKey(std::string("step")), Value(4));  // a scalar replaced
    EXPECT_NE(change_of(v, before, &path).find("int 3"), std::string::npos);
    EXPECT_EQ(path, "opt.step");
  }
  {
    const Value v = sample();
    const auto before = source_tree(v);
    v["opt"]["lrs"].as_list().items.pop_back();  // an item gone
    EXPECT_NE(change_of(v, before, &path), "");
    EXPECT_EQ(path, "opt.lrs");
  }
  {
    const Value v = sample();
    const auto before = source_tree(v);
    v.as_dict().set(DictKey(std::string("extra")), Value(1));  // a key added
    EXPECT_NE(change_of(v, before, &path).find("'extra'"), std::string::npos);
    EXPECT_EQ(path, "<root>");
  }
  {
    const Value v = sample();
    const auto before = source_tree(v);
    Tensor b = v["b"].as_tensor();
    b.set_attr("scale", Value(2.0));  // a tensor attribute rewritten
    EXPECT_NE(change_of(v, before, &path), "");
    EXPECT_EQ(path, "b.scale");
  }
  {
    const Value v = sample();
    const auto before = source_tree(v);
    Tensor w = v["w"].as_tensor();
    w.set_requires_grad(true);  // the source's autograd flag changed in place
    EXPECT_NE(change_of(v, before, &path).find("requires grad"), std::string::npos);
    EXPECT_EQ(path, "w");
  }
}

}  // namespace
}  // namespace stagekit::conformance
