// Filters, run_case outcome mapping and the report writers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runner/case_filter.h"
#include "runner/report_writers.h"

namespace stagekit::conformance {
namespace {

TEST(CaseFilter, GlobsIncludesAndExcludes) {
  EXPECT_TRUE(glob_match("stager.*.cpu.*", "stager.views.cpu.pin0_share0"));
  EXPECT_FALSE(glob_match("stager.*.cpu.*", "stager.views.cuda.pin0_share0"));
  EXPECT_TRUE(glob_match("*share?", "x.pin1_share1"));
  EXPECT_TRUE(glob_match("*", ""));
  const CaseFilter f("stager.views.*:-*.cuda.*,stager.caching.cpu.pin1_share1");
  EXPECT_TRUE(f.matches("stager.views.cpu.pin0_share0"));
  EXPECT_FALSE(f.matches("stager.views.cuda.pin0_share0"));
  EXPECT_TRUE(f.matches("stager.caching.cpu.pin1_share1"));
  EXPECT_FALSE(f.matches("stager.caching.cpu.pin0_share1"));
  EXPECT_TRUE(CaseFilter("").matches("anything"));
  EXPECT_FALSE(CaseFilter("-*").matches("anything"));
}

TEST(CaseFilter, SelectsByTheSegmentsOfHierarchicalIds) {
  const CaseFilter dtypes("stager.dtype.*");
  EXPECT_TRUE(dtypes.matches("stager.dtype.bfloat16.cpu.pin0_share0"));
  EXPECT_FALSE(dtypes.matches("stager.different_dtypes.cpu.pin0_share0"));
  const CaseFilter four_ranks("*.ws4:-utils.gather.*");
  EXPECT_TRUE(four_ranks.matches("replication.basic.cpu.default.ws4"));
  EXPECT_TRUE(four_ranks.matches("utils.create_cpu_state_dict.cpu.pin0_share1.ws4"));
  EXPECT_FALSE(four_ranks.matches("utils.gather.uneven_rows.cpu.default.ws4"));
  EXPECT_TRUE(four_ranks.matches("utils.gather_dtensor.cpu.default.ws4"));
  EXPECT_FALSE(four_ranks.matches("replication.basic.cpu.default.ws2"));
  EXPECT_EQ(four_ranks.includes(), std::vector<std::string>{"*.ws4"});
  EXPECT_EQ(four_ranks.excludes(), std::vector<std::string>{"utils.gather.*"});
  const CaseFilter shared("*.pin?_share1*");
  EXPECT_TRUE(shared.matches("stager.views.cuda.pin1_share1"));
  EXPECT_TRUE(shared.matches("stager.dtensor.cpu.pin1_share1.ws2"));
  EXPECT_FALSE(shared.matches("stager.views.cpu.pin1_share0"));
}

class NothingImplementation final : public Implementation {
 public:
  std::string name() const override { return "nothing"; }
  std::string version() const override { return "0"; }
  Capabilities capabilities() const override { return {}; }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig&) override { return nullptr; }
};

TEST(Profiles, NestUpstreamWithinStrictWithinFull) {
  EXPECT_TRUE(in_profile(Profile::upstream, Profile::upstream));
  EXPECT_FALSE(in_profile(Profile::strict, Profile::upstream));
  EXPECT_FALSE(in_profile(Profile::full, Profile::upstream));
  EXPECT_TRUE(in_profile(Profile::upstream, Profile::strict));
  EXPECT_TRUE(in_profile(Profile::strict, Profile::strict));
  EXPECT_FALSE(in_profile(Profile::full, Profile::strict));
  EXPECT_TRUE(in_profile(Profile::full, Profile::full));
  EXPECT_TRUE(in_profile(Profile::upstream, Profile::full));
  for (Profile p : {Profile::upstream, Profile::strict, Profile::full}) EXPECT_EQ(profile_named(profile_name(p)), p);
  EXPECT_EQ(profile_named("everything"), std::nullopt);
}

TEST(RunCase, OutcomesAreNeverMerged) {
  NothingImplementation impl;
  const Case passes{
      {"t.pass", "", "strict", Profile::strict}, {}, [](CaseContext& ctx) { ctx.check(true, "p", "q", ""); }};
  const Case fails{{"t.fail", "", "strict", Profile::strict}, {}, [](CaseContext& ctx) {
                     ctx.check(false, "a.b", "bytes", "differ");
                     ctx.check(false, "c", "strides", "differ");
                   }};
  const Case throws{
      {"t.throw", "", "strict", Profile::strict}, {}, [](CaseContext&) { throw Unsupported("no", "x.y"); }};
  const Case needs_pin{{"t.pin", "", "strict", Profile::strict}, Requirements{.pin_memory = true}, [](CaseContext&) {}};
  const Case no_stager{
      {"t.ns", "", "strict", Profile::strict}, {}, [](CaseContext& ctx) { (void)ctx.make_stager({}); }};
  EXPECT_EQ(run_case(passes, impl).outcome, Outcome::pass);
  const CaseResult f = run_case(fails, impl);
  EXPECT_EQ(f.outcome, Outcome::fail);
  EXPECT_EQ(f.reason, "a.b: bytes: differ; c: strides: differ");
  const CaseResult t = run_case(throws, impl);
  EXPECT_EQ(t.outcome, Outcome::fail) << "an implementation's Unsupported error is a failure, not a skip";
  EXPECT_NE(t.reason.find("x.y"), std::string::npos);
  const CaseResult p = run_case(needs_pin, impl);
  EXPECT_EQ(p.outcome, Outcome::not_supported);
  EXPECT_NE(p.reason.find("pin_memory"), std::string::npos);
  EXPECT_EQ(run_case(no_stager, impl).outcome, Outcome::fail);
}

TEST(Reports, JsonXmlAndMarkdownCarryEveryResult) {
  RunReport r;
  r.implementation = {{"name", "impl<&>"}, {"version", "1"}};
  r.environment = {{"cuda", "none"}, {"cuda_reason", "no driver"}, {"git", {{"sha", "abc"}}}};
  r.run = {{"profile", "strict"}, {"filter", ""}};
  r.results.push_back({{"a.b.c", "desc", "strict", Profile::strict}, Outcome::pass, "", 0.5, {}, {}});
  r.results.push_back({{"a.b.d", "desc", "src", Profile::upstream}, Outcome::fail, "x < y & \"z\"", 0.1, {}, {}});
  r.results.push_back({{"a.e", "desc", "strict", Profile::strict}, Outcome::not_supported, "no GPU", 0.0, {}, {}});
  const nlohmann::json j = results_json(r);
  EXPECT_EQ(j["schema_version"], 2);
  EXPECT_FALSE(j["results"][0].contains("id_parts")) << "'a.b.c' is not an ID of the grammar";
  ASSERT_EQ(j["results"].size(), 3U);
  EXPECT_EQ(j["results"][1]["outcome"], "fail");
  EXPECT_EQ(j["results"][1]["profile"], "upstream");
  EXPECT_EQ(j["counts"]["not_supported"], 1);
  for (const auto& key : {"id", "outcome", "reason", "source", "profile", "description"}) {
    EXPECT_TRUE(j["results"][0].contains(key)) << key;
  }
  const std::string xml = junit_xml(r);
  EXPECT_NE(xml.find("failures=\"1\""), std::string::npos);
  EXPECT_NE(xml.find("x &lt; y &amp; &quot;z&quot;"), std::string::npos);
  EXPECT_NE(xml.find("<skipped message=\"not_supported: no GPU\"/>"), std::string::npos);
  EXPECT_NE(xml.find("classname=\"a.b\" name=\"d\""), std::string::npos);
  EXPECT_NE(xml.find("impl&lt;&amp;&gt;"), std::string::npos);
  const std::string md = summary_markdown(r);
  EXPECT_NE(md.find("| fail | 1 |"), std::string::npos);
  EXPECT_NE(md.find("`a.b.d` | fail"), std::string::npos);
  EXPECT_NE(md.find("| 1 | no GPU |"), std::string::npos);
}

TEST(Reports, ResultsCarryTheParsedIdParts) {
  RunReport r;
  r.results.push_back({{"utils.gather.uneven_rows.cuda.default.ws4", "desc", "strict", Profile::strict},
                       Outcome::not_supported,
                       "no GPU",
                       0.0,
                       {},
                       {}});
  r.results.push_back(
      {{"stager.views.cpu.pin1_share0", "desc", "strict", Profile::strict}, Outcome::pass, "", 0.0, {}, {}});
  const nlohmann::json j = results_json(r);
  ASSERT_EQ(j["results"].size(), 2U);
  EXPECT_EQ(j["results"][0]["id_parts"], (nlohmann::json{{"area", "utils"},
                                                         {"feature", "gather"},
                                                         {"variant", "uneven_rows"},
                                                         {"source", "cuda"},
                                                         {"config", "default"},
                                                         {"world_size", 4}}));
  EXPECT_EQ(j["results"][1]["id_parts"], (nlohmann::json{{"area", "stager"},
                                                         {"feature", "views"},
                                                         {"variant", ""},
                                                         {"source", "cpu"},
                                                         {"config", "pin1_share0"},
                                                         {"world_size", 1}}));
  EXPECT_EQ(id_parts_json("stager.views.cpu"), nullptr);
}

TEST(Reports, CapabilitiesReadBackFromJson) {
  Capabilities caps;
  caps.pin_memory = true;
  caps.replication = true;
  const auto back = capabilities_from_json(capabilities_json(caps));
  ASSERT_TRUE(back.has_value());
  EXPECT_TRUE(back->pin_memory);
  EXPECT_TRUE(back->replication);
  EXPECT_FALSE(back->share_memory);
  EXPECT_FALSE(back->cuda_sources);
  EXPECT_FALSE(capabilities_from_json(nlohmann::json::object()).has_value()) << "unknown capabilities";
  EXPECT_FALSE(capabilities_from_json(nullptr).has_value());
}

}  // namespace
}  // namespace stagekit::conformance
