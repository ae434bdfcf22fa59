#include "runner/expectations.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/case_filter.h"
#include "runner/legacy_ids.h"

namespace stagekit::conformance {
namespace {

using nlohmann::json;

std::string read_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path);
  if (!in) throw InvalidArgument(fmt::format("cannot read the {} file '{}'", what, path.string()));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

json parse_document(std::string_view text, const std::string& origin, std::string_view list_key,
                    std::initializer_list<int> versions) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InvalidArgument(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  if (!doc.is_object()) throw InvalidArgument(fmt::format("{}: the document must be a JSON object", origin));
  const bool known = doc.contains("schema_version") && doc["schema_version"].is_number_integer() &&
                     std::find(versions.begin(), versions.end(), doc["schema_version"].get<int>()) != versions.end();
  if (!known) {
    std::string allowed;
    for (int v : versions) allowed += fmt::format("{}{}", allowed.empty() ? "" : " or ", v);
    throw InvalidArgument(fmt::format("{}: \"schema_version\" must be {}", origin, allowed));
  }
  if (!doc.contains(list_key)) throw InvalidArgument(fmt::format("{}: missing \"{}\"", origin, list_key));
  return doc;
}

Outcome outcome_from(const json& v, const std::string& where) {
  if (!v.is_string()) throw InvalidArgument(fmt::format("{}: an outcome must be a string", where));
  const auto o = parse_outcome(v.get<std::string>());
  if (!o) {
    throw InvalidArgument(fmt::format("{}: unknown outcome '{}' (pass, fail, not_supported, waived, crash, timeout)",
                                      where, v.get<std::string>()));
  }
  return *o;
}

std::vector<Outcome> outcomes_from(const json& v, const std::string& where) {
  std::vector<Outcome> out;
  if (v.is_array()) {
    for (const json& item : v) out.push_back(outcome_from(item, where));
    if (out.empty()) throw InvalidArgument(fmt::format("{}: an empty list of outcomes", where));
  } else {
    out.push_back(outcome_from(v, where));
  }
  return out;
}

// Higher is more specific.
std::tuple<bool, std::size_t, std::size_t> specificity(const std::string& pattern) {
  const auto wild = static_cast<std::size_t>(
      std::count_if(pattern.begin(), pattern.end(), [](char c) { return c == '*' || c == '?'; }));
  return {wild == 0, pattern.size() - wild, static_cast<std::size_t>(-1) - wild};
}

// A key matches the case's ID; a 0.1 key (runner/legacy_ids.h) also its 0.1 spelling.
bool key_matches(std::string_view pattern, bool legacy, std::string_view case_id) {
  if (glob_match(pattern, case_id)) return true;
  if (!legacy) return false;
  const auto id = CaseId::try_parse(case_id);
  return id && glob_match(pattern, id->legacy_str());
}

// Whether a key names the feature of a case (`area.feature` of `group_size` characters): its text
// before the first wildcard is at least that long. The key is known to match the case.
bool names_feature(std::string_view pattern, std::size_t group_size) {
  return std::min(pattern.find_first_of("*?"), pattern.size()) >= group_size;
}

template <class Entries>
std::vector<std::string> mark_legacy(Entries& entries, const std::vector<CaseId>& ids, const std::string& what) {
  std::vector<std::string> warnings;
  for (auto& e : entries) {
    if (auto legacy = legacy_pattern(e.pattern, ids)) {
      e.legacy = true;
      warnings.push_back(legacy_warning(what, *legacy));
    }
  }
  return warnings;
}

}  // namespace

std::string_view verdict_name(Verdict v) noexcept {
  switch (v) {
    case Verdict::ok: return "ok";
    case Verdict::fix: return "FIX";
    case Verdict::regression: return "REGRESSION";
    case Verdict::difference: return "DIFFERENCE";
    case Verdict::missing: return "MISSING";
  }
  return "?";
}

std::string Expectation::describe() const {
  std::string s;
  for (Outcome o : outcomes) s += fmt::format("{}{}", s.empty() ? "" : "|", outcome_name(o));
  if (!reason_contains.empty()) s += fmt::format(" (reason containing '{}')", reason_contains);
  return s;
}

Expectations Expectations::load(const std::filesystem::path& path) {
  return parse(read_file(path, "expectations"), path.string());
}

Expectations Expectations::parse(std::string_view text, const std::string& origin) {
  const json doc = parse_document(text, origin, "expectations", {1, kExpectationsSchemaVersion});
  const json& map = doc["expectations"];
  if (!map.is_object()) throw InvalidArgument(fmt::format("{}: \"expectations\" must be an object", origin));
  Expectations e;
  e.origin_ = origin;
  for (const auto& [pattern, value] : map.items()) {
    const std::string where = fmt::format("{}: expectation '{}'", origin, pattern);
    Expectation x;
    x.pattern = pattern;
    if (value.is_object()) {
      if (!value.contains("outcome")) throw InvalidArgument(where + ": an object needs \"outcome\"");
      x.outcomes = outcomes_from(value["outcome"], where);
      if (value.contains("reason")) {
        if (!value["reason"].is_string()) throw InvalidArgument(where + ": \"reason\" must be a string");
        x.reason_contains = value["reason"].get<std::string>();
      }
    } else {
      x.outcomes = outcomes_from(value, where);
    }
    e.entries_.push_back(std::move(x));
  }
  // Most specific first; ties alphabetically.
  std::stable_sort(e.entries_.begin(), e.entries_.end(), [](const Expectation& a, const Expectation& b) {
    const auto sa = specificity(a.pattern);
    const auto sb = specificity(b.pattern);
    if (sa != sb) return sa > sb;
    return a.pattern < b.pattern;
  });
  return e;
}

const Expectation* Expectations::match(std::string_view case_id) const {
  for (const Expectation& x : entries_) {
    if (key_matches(x.pattern, x.legacy, case_id)) return &x;
  }
  return nullptr;
}

std::optional<Expectation> Expectations::expected(std::string_view case_id,
                                                  std::string_view undeclared_capability) const {
  if (undeclared_capability.empty()) {
    const Expectation* x = match(case_id);
    return x != nullptr ? std::optional<Expectation>(*x) : std::nullopt;
  }
  const auto id = CaseId::try_parse(case_id);
  const std::size_t group_size = id ? id->group().size() : case_id.size();
  for (const Expectation& x : entries_) {
    if (names_feature(x.pattern, group_size) && key_matches(x.pattern, x.legacy, case_id)) return x;
  }
  Expectation by_default;
  by_default.pattern = fmt::format("<undeclared {}>", undeclared_capability);
  by_default.outcomes = {Outcome::not_supported};
  by_default.reason_contains = fmt::format("does not declare the {} capability", undeclared_capability);
  return by_default;
}

std::vector<std::string> Expectations::accept_legacy_keys(const std::vector<CaseId>& ids) {
  return mark_legacy(entries_, ids, fmt::format("expectations {}: key", origin_));
}

Waivers Waivers::load(const std::filesystem::path& path) { return parse(read_file(path, "waivers"), path.string()); }

Waivers Waivers::parse(std::string_view text, const std::string& origin) {
  const json doc = parse_document(text, origin, "waivers", {1});
  const json& list = doc["waivers"];
  if (!list.is_array()) throw InvalidArgument(fmt::format("{}: \"waivers\" must be a list", origin));
  Waivers w;
  w.origin_ = origin;
  std::size_t index = 0;
  for (const json& item : list) {
    const std::string where = fmt::format("{}: waiver #{}", origin, index++);
    if (!item.is_object()) throw InvalidArgument(where + ": must be an object");
    auto text_field = [&](const char* key) {
      if (!item.contains(key) || !item[key].is_string() || item[key].get<std::string>().empty()) {
        throw InvalidArgument(fmt::format("{}: \"{}\" is required and must be a non-empty string", where, key));
      }
      return item[key].get<std::string>();
    };
    Waiver x;
    x.pattern = text_field("cases");
    x.reason = text_field("reason");
    x.link = text_field("link");
    if (x.link.find("://") == std::string::npos) {
      throw InvalidArgument(fmt::format("{}: \"link\" must be a URL (got '{}')", where, x.link));
    }
    x.outcomes = item.contains("outcomes") ? outcomes_from(item["outcomes"], where)
                                           : std::vector<Outcome>{Outcome::fail, Outcome::crash, Outcome::timeout};
    w.waivers_.push_back(std::move(x));
  }
  return w;
}

const Waiver* Waivers::match(std::string_view case_id, Outcome outcome) const {
  for (const Waiver& x : waivers_) {
    if (std::find(x.outcomes.begin(), x.outcomes.end(), outcome) != x.outcomes.end() &&
        key_matches(x.pattern, x.legacy, case_id)) {
      return &x;
    }
  }
  return nullptr;
}

std::vector<std::string> Waivers::accept_legacy_keys(const std::vector<CaseId>& ids) {
  return mark_legacy(waivers_, ids, fmt::format("waivers {}: cases", origin_));
}

const Waiver* apply_waiver(CaseResult& result, const Waivers& waivers) {
  const Waiver* w = waivers.match(result.info.id, result.outcome);
  if (w == nullptr) return nullptr;
  result.reason = fmt::format("waived ({}): {}; was {}{}{}", w->link, w->reason, outcome_name(result.outcome),
                              result.reason.empty() ? "" : ": ", result.reason);
  result.outcome = Outcome::waived;
  return w;
}

Verdict judge(const CaseResult& result, const Expectation* expected) {
  if (expected == nullptr) return Verdict::missing;
  const auto& allowed = expected->outcomes;
  const bool outcome_expected = std::find(allowed.begin(), allowed.end(), result.outcome) != allowed.end();
  // The reason text is checked for fail, crash and timeout only: a list such as ["fail",
  // "not_supported"] then matches not_supported whatever its reason says.
  if (outcome_expected && (expected->reason_contains.empty() || !is_bad(result.outcome) ||
                           result.reason.find(expected->reason_contains) != std::string::npos)) {
    return Verdict::ok;
  }
  if (outcome_expected) return Verdict::difference;  // the right outcome for another reason
  const bool expected_bad = std::any_of(allowed.begin(), allowed.end(), is_bad);
  if (result.outcome == Outcome::pass && expected_bad) return Verdict::fix;
  const int worst_expected = severity(*std::max_element(
      allowed.begin(), allowed.end(), [](Outcome a, Outcome b) { return severity(a) < severity(b); }));
  if (is_bad(result.outcome) && severity(result.outcome) > worst_expected) return Verdict::regression;
  return Verdict::difference;
}

std::string expectations_from(const std::vector<CaseResult>& results, const std::string& implementation,
                              const std::vector<std::string>& undeclared) {
  auto undeclared_of = [&](std::size_t i) { return i < undeclared.size() ? undeclared[i] : std::string(); };
  // The default covers a not_supported case whose capability is undeclared; a case with an
  // undeclared capability and another outcome needs its exact ID (only a key naming the feature
  // overrides the default); the rest fall under "*" unless their outcome differs from it.
  std::map<Outcome, std::size_t> counts;
  for (std::size_t i = 0; i < results.size(); ++i) {
    if (undeclared_of(i).empty()) ++counts[results[i].outcome];
  }
  std::optional<Outcome> common;
  for (const auto& [o, n] : counts) {
    if (!common || n > counts[*common] || (n == counts[*common] && severity(o) < severity(*common))) common = o;
  }
  nlohmann::ordered_json doc;
  doc["schema_version"] = kExpectationsSchemaVersion;
  doc["implementation"] = implementation;
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  if (common) map["*"] = outcome_name(*common);
  std::vector<const CaseResult*> exact;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const CaseResult& r = results[i];
    const bool by_default = !undeclared_of(i).empty() && r.outcome == Outcome::not_supported;
    const bool by_star = undeclared_of(i).empty() && common && r.outcome == *common;
    if (!by_default && !by_star) exact.push_back(&r);
  }
  std::sort(exact.begin(), exact.end(),
            [](const CaseResult* a, const CaseResult* b) { return a->info.id < b->info.id; });
  for (const CaseResult* r : exact) map[r->info.id] = outcome_name(r->outcome);
  doc["expectations"] = std::move(map);
  return doc.dump(2) + "\n";
}

}  // namespace stagekit::conformance
