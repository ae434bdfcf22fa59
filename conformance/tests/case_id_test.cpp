// Case IDs: formatting, parsing, malformed IDs, the 0.1 spelling, and every registered case.
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "stagekit/conformance/case.h"
#include "stagekit/conformance/case_id.h"

namespace stagekit::conformance {
namespace {

CaseId make(std::string area, std::string feature, std::vector<std::string> variants, std::string source,
            std::string config, int world_size = 0) {
  CaseId id;
  id.area = std::move(area);
  id.feature = std::move(feature);
  id.variants = std::move(variants);
  id.source = std::move(source);
  id.config = std::move(config);
  id.world_size = world_size;
  return id;
}

std::string parse_error(std::string_view id) {
  try {
    (void)CaseId::parse(id);
  } catch (const InvalidArgument& e) {
    return e.detail();
  }
  return "no error";
}

TEST(CaseId, FormatsEachPartInItsOwnSegment) {
  EXPECT_EQ(make("stager", "views", {}, "cpu", "pin1_share0").str(), "stager.views.cpu.pin1_share0");
  EXPECT_EQ(make("stager", "dtype", {"bfloat16"}, "cpu", "pin0_share0").str(), "stager.dtype.bfloat16.cpu.pin0_share0");
  EXPECT_EQ(make("utils", "create_cpu_state_dict", {}, "cpu", "pin0_share1", 4).str(),
            "utils.create_cpu_state_dict.cpu.pin0_share1.ws4");
  EXPECT_EQ(make("replication", "basic", {}, "cpu", "default", 2).str(), "replication.basic.cpu.default.ws2");
  EXPECT_EQ(make("utils", "gather", {"mesh2d", "shard0_shard1"}, "cuda", "default", 4).str(),
            "utils.gather.mesh2d.shard0_shard1.cuda.default.ws4");
  EXPECT_EQ(config_name(true, false), "pin1_share0");
  EXPECT_EQ(config_name(false, true), "pin0_share1");
}

TEST(CaseId, ParsesFromTheRight) {
  const CaseId a = CaseId::parse("stager.cycle_rejected.dict_in_itself.cuda.pin0_share0");
  EXPECT_EQ(a.area, "stager");
  EXPECT_EQ(a.feature, "cycle_rejected");
  EXPECT_EQ(a.variants, std::vector<std::string>{"dict_in_itself"});
  EXPECT_EQ(a.source, "cuda");
  EXPECT_EQ(a.config, "pin0_share0");
  EXPECT_EQ(a.world_size, 0);
  EXPECT_EQ(a.group(), "stager.cycle_rejected");
  EXPECT_EQ(a.variant(), "dict_in_itself");

  const CaseId b = CaseId::parse("utils.gather.mesh2d.shard0_shard1.cpu.default.ws4");
  EXPECT_EQ(b.feature, "gather");
  EXPECT_EQ(b.variants, (std::vector<std::string>{"mesh2d", "shard0_shard1"}));
  EXPECT_EQ(b.variant(), "mesh2d.shard0_shard1");
  EXPECT_EQ(b.config, "default");
  EXPECT_EQ(b.world_size, 4);

  const CaseId c = CaseId::parse("replication.odd_world_refused.cpu.default.ws3");
  EXPECT_TRUE(c.variants.empty());
  EXPECT_EQ(c.world_size, 3);
  EXPECT_EQ(c, make("replication", "odd_world_refused", {}, "cpu", "default", 3));
}

TEST(CaseId, MalformedIdsAreRejectedNamingTheProblem) {
  EXPECT_NE(parse_error("stager.views.cpu").find("malformed case ID 'stager.views.cpu'"), std::string::npos);
  EXPECT_NE(parse_error("stager.views.cpu").find("at least area, feature, source and config"), std::string::npos);
  EXPECT_NE(parse_error("gpu.views.cpu.pin0_share0").find("area 'gpu'"), std::string::npos);
  EXPECT_NE(parse_error("stager.views.tpu.pin0_share0").find("source 'tpu'"), std::string::npos);
  EXPECT_NE(parse_error("stager.views.cpu.pin2_share0").find("config 'pin2_share0'"), std::string::npos);
  EXPECT_NE(parse_error("utils.gather_state_dict.cpu.ws2").find("at least area, feature, source and config"),
            std::string::npos)
      << "a 0.1 ID without a config is not a current ID";
  EXPECT_NE(parse_error("utils.create_cpu_state_dict_pin0_share1.cpu.x.ws4").find("config 'x'"), std::string::npos);
  EXPECT_NE(parse_error("stager.dtype_bfloat16.cpu").find("malformed"), std::string::npos);
  EXPECT_NE(parse_error("utils.x.cpu.default.ws1").find("'ws1' is not a rank count of 2 or more"), std::string::npos);
  EXPECT_NE(parse_error("utils.x.cpu.default.ws02").find("'ws02'"), std::string::npos);
  EXPECT_NE(parse_error("utils.x.cpu.default.ws0").find("'ws0'"), std::string::npos);
  EXPECT_NE(parse_error("stager.Views.cpu.pin0_share0").find("feature 'Views' is not snake_case"), std::string::npos);
  EXPECT_NE(parse_error("stager.views..cpu.pin0_share0").find("empty segment"), std::string::npos);
  EXPECT_NE(parse_error("stager.views_.cpu.pin0_share0").find("snake_case"), std::string::npos);
  EXPECT_NE(parse_error("stager.a__b.cpu.pin0_share0").find("snake_case"), std::string::npos);
  EXPECT_NE(parse_error("stager.dtype.cuda.cpu.pin0_share0").find("variant 'cuda' is spelled like a source"),
            std::string::npos);
  EXPECT_NE(parse_error("stager.x.default.cpu.pin0_share0").find("variant 'default'"), std::string::npos);
  EXPECT_NE(parse_error("stager.x.ws4.cpu.pin0_share0").find("variant 'ws4'"), std::string::npos);
  EXPECT_NE(parse_error("").find("malformed"), std::string::npos);
  EXPECT_FALSE(CaseId::try_parse("stager.views.cpu.pin0_share0.").has_value());
  EXPECT_TRUE(CaseId::try_parse("stager.views.cpu.pin0_share0").has_value());
  // str() refuses parts that break the grammar instead of writing an ID that would not parse back.
  EXPECT_THROW((void)make("stager", "dtype_", {}, "cpu", "pin0_share0").str(), InvalidArgument);
  EXPECT_THROW((void)make("stager", "dtype", {"a.b"}, "cpu", "pin0_share0").str(), InvalidArgument);
  EXPECT_THROW((void)make("utils", "x", {}, "cpu", "default", 1).str(), InvalidArgument);
  EXPECT_THROW((void)make("stager", "x", {}, "cpu", "").str(), InvalidArgument);
}

TEST(CaseId, LegacySpellingGluesParametersOntoTheFeature) {
  EXPECT_EQ(make("stager", "views", {}, "cpu", "pin1_share0").legacy_str(), "stager.views.cpu.pin1_share0");
  EXPECT_EQ(make("stager", "dtype", {"bfloat16"}, "cpu", "pin0_share0").legacy_str(),
            "stager.dtype_bfloat16.cpu.pin0_share0");
  EXPECT_EQ(make("stager", "limit", {"memlock_refused"}, "cpu", "pin1_share0").legacy_str(),
            "stager.limit_memlock_refused.cpu.pin1_share0");
  EXPECT_EQ(make("utils", "create_cpu_state_dict", {}, "cpu", "pin0_share1", 4).legacy_str(),
            "utils.create_cpu_state_dict_pin0_share1.cpu.ws4");
  EXPECT_EQ(make("utils", "gather_state_dict", {}, "cpu", "default", 2).legacy_str(),
            "utils.gather_state_dict.cpu.ws2");
  EXPECT_EQ(make("utils", "type_check", {}, "cuda", "default").legacy_str(), "utils.type_check.cuda");
  EXPECT_EQ(make("replication", "basic", {}, "cpu", "default", 2).legacy_str(), "replication.basic.cpu.ws2");
  EXPECT_EQ(make("stager", "dtensor", {}, "cpu", "pin1_share1", 2).legacy_str(), "stager.dtensor.cpu.ws2");
  EXPECT_EQ(make("utils", "broadcast_state_dict", {"strict"}, "cpu", "default", 4).legacy_str(),
            "utils.broadcast_state_dict_strict.cpu.ws4");
}

TEST(CaseId, EveryRegisteredCaseParsesBackToItsId) {
  const auto& cases = CaseRegistry::instance().cases();
  ASSERT_GT(cases.size(), 300U);
  std::set<std::string> legacy;
  for (const Case& c : cases) {
    const CaseId id = CaseId::parse(c.info.id);
    EXPECT_EQ(id.str(), c.info.id);
    EXPECT_TRUE(id.problem().empty()) << c.info.id;
    EXPECT_EQ(id.world_size, c.requirements.world_size) << c.info.id;
    EXPECT_EQ(id.source == "cuda", c.requirements.cuda_device) << c.info.id;
    EXPECT_TRUE(legacy.insert(id.legacy_str()).second) << "two cases share the 0.1 spelling " << id.legacy_str();
  }
}

// The 0.1 IDs (tests/data/case_ids_0.1.txt, the list of stagekit 0.1) are the legacy spelling of
// exactly the registered cases that existed then.
TEST(CaseId, EveryCaseOfVersion01IsTheLegacySpellingOfOneCase) {
  std::ifstream in(STAGEKIT_TEST_CASE_IDS_01);
  ASSERT_TRUE(in) << STAGEKIT_TEST_CASE_IDS_01;
  std::set<std::string> old_ids;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.front() != '#') old_ids.insert(line);
  }
  ASSERT_GT(old_ids.size(), 300U);
  std::set<std::string> legacy;
  for (const Case& c : CaseRegistry::instance().cases()) legacy.insert(CaseId::parse(c.info.id).legacy_str());
  for (const std::string& old : old_ids) EXPECT_TRUE(legacy.count(old) == 1) << old << " has no registered case";
}

TEST(CaseRegistry, RejectsIdsThatBreakTheGrammarOrContradictTheRequirements) {
  CaseRegistry registry;
  const CaseBody body = [](CaseContext&) {};
  registry.add(make("stager", "views", {}, "cpu", "pin0_share0"), "d", "strict", Profile::strict, {}, body);
  ASSERT_EQ(registry.cases().size(), 1U);
  EXPECT_EQ(registry.cases()[0].info.id, "stager.views.cpu.pin0_share0");
  EXPECT_NE(registry.find("stager.views.cpu.pin0_share0"), nullptr);
  // duplicate
  EXPECT_THROW(registry.add(make("stager", "views", {}, "cpu", "pin0_share0"), "d", "s", Profile::strict, {}, body),
               InternalError);
  // a parameter glued into a segment with a dot, an unknown source, a single rank
  EXPECT_THROW(
      registry.add(make("stager", "dtype", {"a.b"}, "cpu", "pin0_share0"), "d", "s", Profile::strict, {}, body),
      InternalError);
  EXPECT_THROW(registry.add(make("stager", "views", {}, "gpu", "pin0_share0"), "d", "s", Profile::strict, {}, body),
               InternalError);
  EXPECT_THROW(registry.add(make("utils", "x", {}, "cpu", "default", 1), "d", "s", Profile::strict, {}, body),
               InternalError);
  // requirements contradicting the ID
  Requirements cuda;
  cuda.cuda_device = true;
  EXPECT_THROW(registry.add(make("stager", "views", {}, "cpu", "pin0_share1"), "d", "s", Profile::strict, cuda, body),
               InternalError);
  EXPECT_THROW(registry.add(make("stager", "views", {}, "cuda", "pin0_share1"), "d", "s", Profile::strict, {}, body),
               InternalError);
  EXPECT_THROW(registry.add(make("stager", "views", {}, "cpu", "pin1_share1"), "d", "s", Profile::strict, {}, body),
               InternalError);
  EXPECT_THROW(registry.add(make("utils", "x", {}, "cpu", "default", 2), "d", "s", Profile::strict, {}, body),
               InternalError);
  EXPECT_EQ(registry.cases().size(), 1U);
}

TEST(Capabilities, UndeclaredCapabilityNamesTheFirstMissingOneButNotHardware) {
  Requirements r;
  r.cuda_device = true;
  r.pin_memory = true;
  Capabilities caps;
  EXPECT_EQ(undeclared_capability(r, caps), "cuda_sources");
  caps.cuda_sources = true;
  EXPECT_EQ(undeclared_capability(r, caps), "pin_memory");
  caps.pin_memory = true;
  EXPECT_EQ(undeclared_capability(r, caps), "");
  Requirements host_only;
  host_only.no_cuda_device = true;
  EXPECT_EQ(undeclared_capability(host_only, Capabilities{}), "") << "a device present is not a capability";
  Requirements replication;
  replication.replication = true;
  EXPECT_EQ(undeclared_capability(replication, Capabilities{}), "replication");
  EXPECT_NE(unmet_requirement(replication, Capabilities{}).find("does not declare the replication capability"),
            std::string::npos);
}

}  // namespace
}  // namespace stagekit::conformance
