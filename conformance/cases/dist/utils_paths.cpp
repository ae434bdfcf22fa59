// Spec B.6.13: the state-dict path helpers — traverse_state_dict, flatten_state_dict (with its
// duplicate-key error), set_element and unflatten_state_dict — single process.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "../../harness/dist_fixtures.h"
#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

using dist::ObjectPath;

std::string path_text(const ObjectPath& path) {
  std::vector<std::string> parts;
  for (const DictKey& k : path) {
    parts.push_back(std::holds_alternative<std::string>(k) ? fmt::format("'{}'", std::get<std::string>(k))
                                                           : std::to_string(std::get<std::int64_t>(k)));
  }
  return fmt::format("({})", fmt::join(parts, ", "));
}

// Runs one helper; an Unsupported helper makes the case not_supported, any other error fails it.
template <class Fn>
auto call_helper(CaseContext& ctx, std::string_view helper, Fn&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Unsupported& e) {
    ctx.not_supported(fmt::format("{}: {}", helper, e.what()));
  } catch (const std::exception& e) {
    ctx.require(false, "<utilities>", helper, fmt::format("raised: {}", e.what()));
  }
  throw InternalError("unreachable");
}

struct Expected {
  ObjectPath path;
  std::string flat;
  Value leaf;
};

void path_helpers_case(CaseContext& ctx, Source src, int) {
  const Device dev = source_device(src);
  const Tensor w = Tensor::random({4, 4}, DType::float32, 501, dev);
  const Tensor l0 = Tensor::random({3}, DType::float32, 502, dev);
  const Tensor b = Tensor::random({2}, DType::bfloat16, 503, dev);
  const Tensor o0 = Tensor::random({5}, DType::float64, 504, dev);
  const Value empty = Value::dict();
  const Value empty_list = Value::list({});
  const Value empty_tuple = Value::tuple({});
  auto root = std::make_shared<Dict>();
  root->set(std::string("model"), Value::dict({{"w", w},
                                               {"layers", Value::list({l0, Value::dict({{"b", b}})})},
                                               {"empty", empty},
                                               {"no_items", empty_list},
                                               {"no_pair", empty_tuple}}));
  root->set(std::string("step"), Value(std::int64_t{3}));
  root->set(std::string("opt"), Value::tuple({o0, Value(std::int64_t{4})}));
  root->set(std::int64_t{7}, Value(std::string("int key")));
  const Value sd(root);
  const std::vector<Expected> expected = {
      {{std::string("model"), std::string("w")}, "model.w", w},
      {{std::string("model"), std::string("layers"), std::int64_t{0}}, "model.layers.0", l0},
      {{std::string("model"), std::string("layers"), std::int64_t{1}, std::string("b")}, "model.layers.1.b", b},
      {{std::string("model"), std::string("empty")}, "model.empty", empty},
      {{std::string("model"), std::string("no_items")}, "model.no_items", empty_list},
      {{std::string("model"), std::string("no_pair")}, "model.no_pair", empty_tuple},
      {{std::string("step")}, "step", Value(std::int64_t{3})},
      {{std::string("opt"), std::int64_t{0}}, "opt.0", o0},
      {{std::string("opt"), std::int64_t{1}}, "opt.1", Value(std::int64_t{4})},
      {{std::string("7")}, "7", Value(std::string("int key"))},
  };
  auto& u = ctx.utilities();
  auto same_leaf = [](const Value& a, const Value& e) {
    if (e.identity() != nullptr) return a.identity() == e.identity();
    return a.kind() == e.kind() &&
           (e.kind() != Value::Kind::integer ? a.as_string() == e.as_string() : a.as_int() == e.as_int());
  };

  // traverse_state_dict: every leaf, depth-first, in order, with its path; the leaves themselves.
  const auto leaves = call_helper(ctx, "traverse_state_dict", [&] { return u.traverse_state_dict(sd); });
  ctx.check(leaves.size() == expected.size(), "<root>", "traverse_state_dict",
            fmt::format("{} leaves visited, expected {}", leaves.size(), expected.size()));
  for (std::size_t i = 0; i < std::min(leaves.size(), expected.size()); ++i) {
    ctx.check(leaves[i].first == expected[i].path, expected[i].flat, "traverse_state_dict",
              fmt::format("leaf #{} has the path {}, expected {}", i, path_text(leaves[i].first),
                          path_text(expected[i].path)));
    ctx.check(same_leaf(leaves[i].second, expected[i].leaf), expected[i].flat, "traverse_state_dict",
              "the visited value is not the leaf itself");
  }

  // flatten_state_dict: flat keys joined by '.', the leaves themselves, the mapping back.
  const dist::FlatStateDict flat = call_helper(ctx, "flatten_state_dict", [&] { return u.flatten_state_dict(sd); });
  ctx.require(flat.flat.kind() == Value::Kind::dict, "<root>", "flatten_state_dict",
              "the flat state dict is not a dict");
  const Dict& fd = flat.flat.as_dict();
  ctx.check(
      fd.size() == expected.size() && flat.mapping.size() == expected.size(), "<root>", "flatten_state_dict",
      fmt::format("{} flat keys and {} mapping entries, expected {}", fd.size(), flat.mapping.size(), expected.size()));
  for (const Expected& e : expected) {
    const bool present = fd.contains(e.flat);
    ctx.check(present && same_leaf(fd.at(e.flat), e.leaf), e.flat, "flatten_state_dict",
              present ? "the flat value is not the leaf itself" : "the flat key is missing");
    const auto m =
        std::find_if(flat.mapping.begin(), flat.mapping.end(), [&](const auto& p) { return p.first == e.flat; });
    ctx.check(m != flat.mapping.end() && m->second == e.path, e.flat, "flatten_state_dict",
              m == flat.mapping.end() ? "no mapping entry" : fmt::format("mapped to {}", path_text(m->second)));
  }

  // A flat key reached twice is an error naming it.
  const Value clash = Value::dict({{"a", Value::dict({{"b", w}})}, {"a.b", l0}});
  bool raised = false;
  try {
    (void)u.flatten_state_dict(clash);
  } catch (const Error& e) {
    raised = true;
    ctx.check(std::string(e.what()).find("a.b") != std::string::npos, "a.b", "duplicate flat key",
              fmt::format("the error does not name the key a.b: {}", e.what()));
  }
  ctx.check(raised, "a.b", "duplicate flat key", "flattening {'a': {'b': ...}, 'a.b': ...} did not raise");

  // unflatten_state_dict(flatten_state_dict(sd)): the structure again (tuples as lists), leaves shared.
  const Value back =
      call_helper(ctx, "unflatten_state_dict", [&] { return u.unflatten_state_dict(flat.flat, flat.mapping); });
  const auto round = call_helper(ctx, "traverse_state_dict", [&] { return u.traverse_state_dict(back); });
  ctx.check(round.size() == expected.size(), "<root>", "unflatten_state_dict",
            fmt::format("the rebuilt dict has {} leaves, expected {}", round.size(), expected.size()));
  for (std::size_t i = 0; i < std::min(round.size(), expected.size()); ++i) {
    ctx.check(round[i].first == expected[i].path && same_leaf(round[i].second, expected[i].leaf), expected[i].flat,
              "unflatten_state_dict",
              fmt::format("leaf #{} is at {} or is not the original leaf", i, path_text(round[i].first)));
  }
  ctx.check(back.kind() == Value::Kind::dict && back.as_dict().contains(std::string("opt")) &&
                back.as_dict().at(std::string("opt")).kind() == Value::Kind::list,
            "opt", "unflatten_state_dict", "a tuple level is not rebuilt as a list (upstream's _set_element)");

  // The mapping in another order (reversed): the same structure, each list leaf at its index (lists
  // grow with None), whatever order the entries arrive in.
  const dist::FlattenMapping reversed(flat.mapping.rbegin(), flat.mapping.rend());
  const Value back_reversed =
      call_helper(ctx, "unflatten_state_dict", [&] { return u.unflatten_state_dict(flat.flat, reversed); });
  const auto round_reversed =
      call_helper(ctx, "traverse_state_dict", [&] { return u.traverse_state_dict(back_reversed); });
  ctx.check(round_reversed.size() == expected.size(), "<root>", "unflatten_state_dict",
            fmt::format("with the mapping reversed, the rebuilt dict has {} leaves, expected {}", round_reversed.size(),
                        expected.size()));
  for (const Expected& e : expected) {
    const auto at = std::find_if(round_reversed.begin(), round_reversed.end(),
                                 [&](const auto& leaf) { return leaf.first == e.path; });
    ctx.check(at != round_reversed.end() && same_leaf(at->second, e.leaf), e.flat, "unflatten_state_dict",
              at == round_reversed.end() ? "with the mapping reversed, no leaf is at this path"
                                         : "with the mapping reversed, the leaf here is not the original leaf");
  }

  // set_element creates dicts for string keys and lists (grown with None) for indices.
  Value built;
  call_helper(ctx, "set_element", [&] {
    u.set_element(built, {std::string("x"), std::int64_t{2}, std::string("y")}, Value(std::int64_t{5}));
    return 0;
  });
  const bool shaped = built.kind() == Value::Kind::dict && built.as_dict().contains(std::string("x")) &&
                      built.as_dict().at(std::string("x")).kind() == Value::Kind::list &&
                      built.as_dict().at(std::string("x")).as_list().items.size() == 3;
  ctx.require(shaped, "x", "set_element",
              "set_element(('x', 2, 'y'), 5) on nothing did not build {'x': [_, _, {...}]}");
  const std::vector<Value>& items = built.as_dict().at(std::string("x")).as_list().items;
  ctx.check(items[0].is_none() && items[1].is_none(), "x", "set_element", "the list was not grown with None");
  ctx.check(items[2].kind() == Value::Kind::dict && items[2]["y"].kind() == Value::Kind::integer &&
                items[2]["y"].as_int() == 5,
            "x.2.y", "set_element", "the value is not at x[2]['y']");

  // Into what exists: a None slot is filled in place (not appended), a None slot on the way becomes a
  // dict, and the elements already there stay.
  call_helper(ctx, "set_element", [&] {
    u.set_element(built, {std::string("x"), std::int64_t{0}}, Value(std::int64_t{6}));
    u.set_element(built, {std::string("x"), std::int64_t{1}, std::string("z")}, Value(std::int64_t{7}));
    u.set_element(built, {std::string("x"), std::int64_t{2}, std::string("w")}, Value(std::int64_t{8}));
    return 0;
  });
  const std::vector<Value>& now = built.as_dict().at(std::string("x")).as_list().items;
  const auto int_at = [](const Value& d, const char* key) {
    return d.kind() == Value::Kind::dict && d.as_dict().contains(std::string(key)) &&
                   d[key].kind() == Value::Kind::integer
               ? d[key].as_int()
               : std::int64_t{-1};
  };
  ctx.check(now.size() == 3, "x", "set_element",
            fmt::format("setting x[0], x[1]['z'] and x[2]['w'] into a list of 3 left {} elements", now.size()));
  if (now.size() == 3) {
    ctx.check(now[0].kind() == Value::Kind::integer && now[0].as_int() == 6, "x.0", "set_element",
              "x[0] was not set in place");
    ctx.check(int_at(now[1], "z") == 7, "x.1.z", "set_element", "the None at x[1] did not become {'z': 7}");
    ctx.check(int_at(now[2], "y") == 5 && int_at(now[2], "w") == 8, "x.2", "set_element",
              "x[2] is not {'y': 5, 'w': 8}: the dict already there was replaced or not filled");
  }

  // A level of another kind on the way (a tuple cannot be written into, a scalar holds no key) is an
  // error naming the path, and leaves the dict as it was.
  Value mixed = Value::dict(
      {{"opt", Value::tuple({Value(std::int64_t{1}), Value(std::int64_t{2})})}, {"step", Value(std::int64_t{3})}});
  const std::pair<ObjectPath, const char*> refused[] = {{{std::string("opt"), std::int64_t{0}}, "opt"},
                                                        {{std::string("step"), std::string("x")}, "step"}};
  for (const auto& [path, level] : refused) {
    bool raised_here = false;
    try {
      u.set_element(mixed, path, Value(std::int64_t{9}));
    } catch (const Unsupported& e) {
      ctx.not_supported(fmt::format("set_element: {}", e.what()));
    } catch (const InvalidArgument& e) {
      raised_here = true;
      ctx.check(std::string(e.what()).find(level) != std::string::npos, level, "set_element",
                fmt::format("the error for {} does not name {}: {}", path_text(path), level, e.what()));
    } catch (const std::exception& e) {
      raised_here = true;
      ctx.check(
          false, level, "set_element",
          fmt::format("set_element({}) raised {} instead of an invalid-argument error", path_text(path), e.what()));
    }
    ctx.check(raised_here, level, "set_element",
              fmt::format("set_element({}) wrote through a {} level", path_text(path),
                          level == std::string("opt") ? "tuple" : "scalar"));
  }
  ctx.check(mixed["opt"].kind() == Value::Kind::tuple && mixed["opt"].as_tuple().items().size() == 2 &&
                mixed["step"].kind() == Value::Kind::integer && mixed["step"].as_int() == 3,
            "<root>", "set_element", "a refused set_element changed the dict (opt or step is not what it was)");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(utils_paths) {
  const std::array<int, 1> one = {1};
  static constexpr Source kCpuOnly[] = {Source::cpu};
  Requirements r;
  r.state_dict_utilities = true;
  add_world_cases(registry, "utils", "path_helpers",
                  "traverse_state_dict visits every leaf depth-first with its path, an empty dict, list or tuple as a "
                  "leaf "
                  "(stagekit's choice: upstream visits nothing there, so its round trip loses them); "
                  "flatten_state_dict joins the path with '.' and rejects a flat key reached twice, naming it; "
                  "unflatten_state_dict rebuilds the structure (tuples as lists), whatever the mapping's order; "
                  "set_element creates dicts and "
                  "None-grown lists along the path and fills what exists in place, and refuses a level of another "
                  "kind (a tuple, a scalar), naming it",
                  "strict (spec B.6.13)", Profile::strict, kCpuOnly, one, path_helpers_case, r);
}

}  // namespace stagekit::conformance
