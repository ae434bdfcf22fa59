// Reading 0.1 case-ID patterns: which cases they meant, and the current pattern to write instead.
#include "runner/legacy_ids.h"

#include <algorithm>

#include <fmt/format.h>

#include "runner/case_filter.h"
#include "stagekit/conformance/case.h"

namespace stagekit::conformance {
namespace {

constexpr std::size_t kMaxListed = 12;

bool has_wildcard(std::string_view pattern) { return pattern.find_first_of("*?") != std::string_view::npos; }

// The longest common prefix of `values` that ends where a snake_case word ends in every one of them
// ("pin1_share0", "pin1_share1" -> "pin1_"; "gather", "gather_dtensor" -> "gather"; "cpu", "cuda" -> "").
std::string common_prefix(const std::vector<std::string>& values) {
  if (values.empty()) return {};
  std::string prefix = values.front();
  for (const std::string& v : values) {
    std::size_t n = 0;
    while (n < prefix.size() && n < v.size() && prefix[n] == v[n]) ++n;
    prefix.resize(n);
  }
  auto word_end = [&](std::size_t p) {
    return std::all_of(values.begin(), values.end(), [&](const std::string& v) {
      return p == v.size() || v[p] == '_' || (p > 0 && v[p - 1] == '_');
    });
  };
  std::size_t p = prefix.size();
  while (p > 0 && !word_end(p)) --p;
  return prefix.substr(0, p);
}

// "a*.*" -> "a*": runs of wildcards and dots between them become one '*'.
std::string merge_wildcards(const std::string& pattern) {
  std::string out;
  for (char c : pattern) {
    if (c == '*') {
      auto star_dot = [&] { return out.size() >= 2 && out.back() == '.' && out[out.size() - 2] == '*'; };
      while (!out.empty() && (out.back() == '*' || star_dot())) out.pop_back();
    }
    out += c;
  }
  return out;
}

// One field of a pattern over a set of cases: the value they share, else their common prefix and '*'.
std::string field_over(const std::vector<std::string>& values) {
  const bool same = std::all_of(values.begin(), values.end(), [&](const std::string& v) { return v == values[0]; });
  return same ? values.front() : common_prefix(values) + "*";
}

// A pattern's parts, rendered as area.feature[.variant].source.config[.wsN]; a part may be a
// literal, "prefix*" or "*".
struct Shape {
  std::string area, feature, variant, source, config;
  std::string ranks;              // "" (no rank segment), "wsN", or "*" (any, glued to the config)
  bool optional_variant = false;  // some cases have a variant and some none: feature + "*"
};

std::string render(const Shape& s) {
  std::vector<std::string> segments{s.area, s.optional_variant ? s.feature + "*" : s.feature};
  if (!s.optional_variant && !s.variant.empty()) segments.push_back(s.variant);
  segments.push_back(s.source);
  segments.push_back(s.config);
  std::string out;
  for (const std::string& seg : segments) {
    if (seg == "*" && (out == "*" || out.ends_with(".*"))) continue;  // "a.*.*" -> "a.*"
    out += (out.empty() ? "" : ".") + seg;
  }
  if (s.ranks == "*") {
    out += "*";
  } else if (!s.ranks.empty()) {
    out += "." + s.ranks;
  }
  std::string collapsed;
  for (char c : out) {
    if (c == '*' && !collapsed.empty() && collapsed.back() == '*') continue;
    collapsed += c;
  }
  return collapsed;
}

class Catalogue {
 public:
  explicit Catalogue(const std::vector<CaseId>& ids) : ids_(ids) {
    for (const CaseId& id : ids) {
      current_.push_back(id.str());
      legacy_.push_back(id.legacy_str());
    }
  }
  [[nodiscard]] std::size_t size() const { return ids_.size(); }
  [[nodiscard]] const CaseId& id(std::size_t i) const { return ids_[i]; }
  [[nodiscard]] const std::string& current(std::size_t i) const { return current_[i]; }
  [[nodiscard]] const std::string& legacy(std::size_t i) const { return legacy_[i]; }

  // True when `pattern` matches the current IDs of exactly the cases in `chosen`.
  [[nodiscard]] bool matches_exactly(const std::string& pattern, const std::vector<bool>& chosen) const {
    for (std::size_t i = 0; i < size(); ++i) {
      if (glob_match(pattern, current_[i]) != chosen[i]) return false;
    }
    return true;
  }

 private:
  const std::vector<CaseId>& ids_;
  std::vector<std::string> current_, legacy_;
};

// The most general current pattern (within the shape of the grammar) matching exactly `members`,
// or nullopt when none does.
std::optional<std::string> pattern_for(const Catalogue& cat, const std::vector<std::size_t>& members) {
  std::vector<bool> chosen(cat.size(), false);
  for (std::size_t i : members) chosen[i] = true;
  auto values = [&](auto part) {
    std::vector<std::string> out;
    for (std::size_t i : members) out.push_back(part(cat.id(i)));
    return out;
  };
  Shape shape;
  shape.area = field_over(values([](const CaseId& c) { return c.area; }));
  shape.feature = field_over(values([](const CaseId& c) { return c.feature; }));
  const std::vector<std::string> variants = values([](const CaseId& c) { return c.variant(); });
  const bool some_without =
      std::any_of(variants.begin(), variants.end(), [](const std::string& v) { return v.empty(); });
  shape.variant = field_over(variants);
  if (some_without && shape.variant != "") {
    shape.variant.clear();
    shape.optional_variant = true;
  }
  shape.source = field_over(values([](const CaseId& c) { return c.source; }));
  shape.config = field_over(values([](const CaseId& c) { return c.config; }));
  const std::vector<std::string> ranks =
      values([](const CaseId& c) { return c.world_size == 0 ? std::string() : fmt::format("ws{}", c.world_size); });
  shape.ranks = std::all_of(ranks.begin(), ranks.end(), [&](const std::string& r) { return r == ranks[0]; })
                    ? ranks.front()
                    : "*";
  if (!cat.matches_exactly(render(shape), chosen)) return std::nullopt;
  // Widen what does not tell these cases apart (e.g. `.cpu.pin0_share0` -> `.cpu.*`).
  const auto widen = [&](std::string Shape::*part) {
    Shape wider = shape;
    if (wider.*part == "" || wider.*part == "*") return;
    wider.*part = "*";
    if (cat.matches_exactly(render(wider), chosen)) shape = wider;
  };
  widen(&Shape::config);
  widen(&Shape::ranks);
  widen(&Shape::source);
  widen(&Shape::variant);
  const std::string pattern = render(shape);
  const std::string merged = merge_wildcards(pattern);
  return cat.matches_exactly(merged, chosen) ? merged : pattern;
}

}  // namespace

std::optional<LegacyPattern> legacy_pattern(std::string_view pattern, const std::vector<CaseId>& ids) {
  const Catalogue cat(ids);
  // The cases the pattern matches by either spelling; it is a 0.1 pattern when it matches the 0.1
  // spelling of a case whose current ID it does not match.
  std::vector<std::size_t> members;
  bool legacy_only = false;
  for (std::size_t i = 0; i < cat.size(); ++i) {
    const bool current = glob_match(pattern, cat.current(i));
    const bool legacy = glob_match(pattern, cat.legacy(i));
    if (current || legacy) members.push_back(i);
    legacy_only = legacy_only || (legacy && !current);
  }
  if (!legacy_only) return std::nullopt;
  LegacyPattern out;
  out.pattern = std::string(pattern);
  out.cases = members.size();
  if (!has_wildcard(pattern)) {
    for (std::size_t i : members) out.replacement.push_back(cat.current(i));
    return out;
  }
  if (auto whole = pattern_for(cat, members)) {
    out.replacement.push_back(*whole);
    return out;
  }
  // One pattern per feature, or its IDs where no pattern fits.
  std::vector<std::string> groups;
  for (std::size_t i : members) {
    if (std::find(groups.begin(), groups.end(), cat.id(i).group()) == groups.end()) groups.push_back(cat.id(i).group());
  }
  for (const std::string& g : groups) {
    std::vector<std::size_t> in_group;
    for (std::size_t i : members) {
      if (cat.id(i).group() == g) in_group.push_back(i);
    }
    if (auto p = pattern_for(cat, in_group)) {
      out.replacement.push_back(*p);
    } else {
      for (std::size_t i : in_group) out.replacement.push_back(cat.current(i));
    }
  }
  return out;
}

std::string legacy_warning(std::string_view what, const LegacyPattern& legacy) {
  std::string write;
  for (std::size_t i = 0; i < legacy.replacement.size() && i < kMaxListed; ++i) {
    write += fmt::format("{}'{}'", i == 0 ? "" : ", ", legacy.replacement[i]);
  }
  if (legacy.replacement.size() > kMaxListed) {
    write += fmt::format(" and {} more", legacy.replacement.size() - kMaxListed);
  }
  return fmt::format("{} '{}' uses a pre-0.2 case ID; write {}", what, legacy.pattern, write);
}

std::vector<CaseId> registered_case_ids() {
  std::vector<CaseId> ids;
  for (const Case& c : CaseRegistry::instance().cases()) ids.push_back(CaseId::parse(c.info.id));
  return ids;
}

}  // namespace stagekit::conformance
