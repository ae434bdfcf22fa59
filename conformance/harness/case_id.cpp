// Conformance case IDs: formatting, parsing and the stagekit 0.1 spelling (grammar in case_id.h).
#include "stagekit/conformance/case_id.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>

#include "stagekit/core/error.h"

namespace stagekit::conformance {
namespace {

constexpr std::string_view kAreas[] = {"stager", "utils", "replication"};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_lower(char c) { return c >= 'a' && c <= 'z'; }

// [a-z][a-z0-9]*(_[a-z0-9]+)*
bool is_snake_case(std::string_view s) {
  if (s.empty() || !is_lower(s.front()) || s.back() == '_') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (s[i - 1] == '_') return false;
    } else if (!is_lower(c) && !is_digit(c)) {
      return false;
    }
  }
  return true;
}

bool is_source(std::string_view s) { return s == "cpu" || s == "cuda"; }

bool is_config(std::string_view s) {
  return s == "default" || (s.size() == 11 && s.substr(0, 3) == "pin" && (s[3] == '0' || s[3] == '1') &&
                            s.substr(4, 6) == "_share" && (s[10] == '0' || s[10] == '1'));
}

// "ws<N>" with N >= 2 and no leading zero; the rank count, or nullopt.
std::optional<int> rank_segment(std::string_view s) {
  if (s.size() < 3 || s.substr(0, 2) != "ws") return std::nullopt;
  const std::string_view digits = s.substr(2);
  if (digits.front() == '0' || !std::all_of(digits.begin(), digits.end(), is_digit)) return std::nullopt;
  int n = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (ec != std::errc() || end != digits.data() + digits.size() || n < 2) return std::nullopt;
  return n;
}

// Whether `s` looks like a rank segment at all (ws followed by digits), valid or not.
bool looks_like_ranks(std::string_view s) {
  return s.size() > 2 && s.substr(0, 2) == "ws" && std::all_of(s.begin() + 2, s.end(), is_digit);
}

// Why a feature or variant segment is not allowed, or empty.
std::string name_problem(std::string_view what, std::string_view s) {
  if (!is_snake_case(s)) return fmt::format("{} '{}' is not snake_case ([a-z][a-z0-9]*(_[a-z0-9]+)*)", what, s);
  if (is_source(s) || is_config(s) || looks_like_ranks(s)) {
    return fmt::format("{} '{}' is spelled like a source, a config or a rank count", what, s);
  }
  return {};
}

std::vector<std::string_view> split_dots(std::string_view id) {
  std::vector<std::string_view> out;
  std::size_t start = 0;
  while (true) {
    const std::size_t dot = id.find('.', start);
    out.push_back(id.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return out;
}

}  // namespace

std::string config_name(bool pin_memory, bool share_memory) {
  return fmt::format("pin{}_share{}", pin_memory ? 1 : 0, share_memory ? 1 : 0);
}

std::string CaseId::problem() const {
  if (std::find(std::begin(kAreas), std::end(kAreas), area) == std::end(kAreas)) {
    return fmt::format("area '{}' is not stager, utils or replication", area);
  }
  if (auto p = name_problem("feature", feature); !p.empty()) return p;
  for (const std::string& v : variants) {
    if (auto p = name_problem("variant", v); !p.empty()) return p;
  }
  if (!is_source(source)) return fmt::format("source '{}' is not cpu or cuda", source);
  if (!is_config(config)) return fmt::format("config '{}' is not pin<0|1>_share<0|1> or default", config);
  if (world_size != 0 && world_size < 2) {
    return fmt::format("world size {} (a rank count is 2 or more; a single-process case has none)", world_size);
  }
  return {};
}

std::string CaseId::str() const {
  if (const std::string p = problem(); !p.empty()) {
    throw InvalidArgument(fmt::format("malformed case ID parts ({}.{}...): {}", area, feature, p));
  }
  std::string id = area + "." + feature;
  for (const std::string& v : variants) id += "." + v;
  id += "." + source + "." + config;
  if (world_size != 0) id += fmt::format(".ws{}", world_size);
  return id;
}

std::string CaseId::group() const { return area + "." + feature; }

std::string CaseId::variant() const {
  std::string out;
  for (const std::string& v : variants) out += (out.empty() ? "" : ".") + v;
  return out;
}

// In 0.1 the variant segments (and, outside the stager area, a non-default config) were glued onto
// the feature with '_'; stager cases of one process ended in their config, multi-rank stager cases
// had none; no case said "default".
std::string CaseId::legacy_str() const {
  std::string id = area + "." + feature;
  for (const std::string& v : variants) id += "_" + v;
  if (area != "stager" && config != "default") id += "_" + config;
  id += "." + source;
  if (area == "stager" && world_size == 0) id += "." + config;
  if (world_size != 0) id += fmt::format(".ws{}", world_size);
  return id;
}

std::optional<CaseId> CaseId::try_parse(std::string_view id) {
  try {
    return parse(id);
  } catch (const InvalidArgument&) {
    return std::nullopt;
  }
}

CaseId CaseId::parse(std::string_view id) {
  auto malformed = [&](const std::string& why) {
    return InvalidArgument(
        fmt::format("malformed case ID '{}': {} (expected "
                    "area.feature[.variant].source.config[.wsN])",
                    id, why));
  };
  std::vector<std::string_view> segments = split_dots(id);
  CaseId out;
  if (!segments.empty() && looks_like_ranks(segments.back())) {
    const auto n = rank_segment(segments.back());
    if (!n) throw malformed(fmt::format("'{}' is not a rank count of 2 or more", segments.back()));
    out.world_size = *n;
    segments.pop_back();
  }
  if (segments.size() < 4) {
    throw malformed(
        fmt::format("{} segment(s) before the rank count; an ID has at least area, feature, source and "
                    "config",
                    segments.size()));
  }
  for (std::string_view s : segments) {
    if (s.empty()) throw malformed("an empty segment");
  }
  out.config = std::string(segments.back());
  segments.pop_back();
  out.source = std::string(segments.back());
  segments.pop_back();
  out.area = std::string(segments[0]);
  out.feature = std::string(segments[1]);
  for (std::size_t i = 2; i < segments.size(); ++i) out.variants.emplace_back(segments[i]);
  if (const std::string p = out.problem(); !p.empty()) throw malformed(p);
  return out;
}

}  // namespace stagekit::conformance
