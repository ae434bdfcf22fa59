#include "runner/expectations.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "runner/case_filter.h"

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

json parse_document(std::string_view text, const std::string& origin, std::string_view list_key) {
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InvalidArgument(fmt::format("{}: not valid JSON: {}", origin, e.what()));
  }
  if (!doc.is_object()) throw InvalidArgument(fmt::format("{}: the document must be a JSON object", origin));
  if (!doc.contains("schema_version") || doc["schema_version"] != 1) {
    throw InvalidArgument(fmt::format("{}: \"schema_version\" must be 1", origin));
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
  const auto wild = static_cast<std::size_t>(std::count_if(pattern.begin(), pattern.end(),
                                                           [](char c) { return c == '*' || c == '?'; }));
  return {wild == 0, pattern.size() - wild, static_cast<std::size_t>(-1) - wild};
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
  const json doc = parse_document(text, origin, "expectations");
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
    if (glob_match(x.pattern, case_id)) return &x;
  }
  return nullptr;
}

Waivers Waivers::load(const std::filesystem::path& path) { return parse(read_file(path, "waivers"), path.string()); }

Waivers Waivers::parse(std::string_view text, const std::string& origin) {
  const json doc = parse_document(text, origin, "waivers");
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
    if (std::find(x.outcomes.begin(), x.outcomes.end(), outcome) != x.outcomes.end() && glob_match(x.pattern, case_id)) {
      return &x;
    }
  }
  return nullptr;
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
  const int worst_expected = severity(*std::max_element(allowed.begin(), allowed.end(), [](Outcome a, Outcome b) {
    return severity(a) < severity(b);
  }));
  if (is_bad(result.outcome) && severity(result.outcome) > worst_expected) return Verdict::regression;
  return Verdict::difference;
}

std::string expectations_from(const std::vector<CaseResult>& results, const std::string& implementation) {
  nlohmann::ordered_json doc;
  doc["schema_version"] = 1;
  doc["implementation"] = implementation;
  nlohmann::ordered_json map = nlohmann::ordered_json::object();
  for (const CaseResult& r : results) map[r.info.id] = outcome_name(r.outcome);
  doc["expectations"] = std::move(map);
  return doc.dump(2) + "\n";
}

}  // namespace stagekit::conformance
