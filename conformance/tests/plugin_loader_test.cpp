// The plugin loader: the reference loads through the C entry point; a skewed build tag, another ABI
// major, a library without the entry point, a non-library and a missing file are refused with a
// message saying exactly what is wrong.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "runner/implementation_source.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit::conformance {
namespace {

TEST(BuildTag, ParsesAndNamesEveryDifference) {
  const auto fields = parse_build_tag("stagekit=0.1.0;compiler=gcc-12;flag");
  EXPECT_EQ(fields.at("stagekit"), "0.1.0");
  EXPECT_EQ(fields.at("compiler"), "gcc-12");
  EXPECT_EQ(fields.at("flag"), "");
  EXPECT_EQ(build_tag_differences("a=1;b=2", "b=2;a=1"), "");
  EXPECT_EQ(build_tag_differences("a=1;b=3", "a=1;b=2"), "b: plugin '3', stagekit-conform '2'");
  EXPECT_EQ(build_tag_differences("a=1", "a=1;c=x"), "c: plugin <missing>, stagekit-conform 'x'");
  EXPECT_NE(runner_build_tag().find("stagekit=" STAGEKIT_VERSION), std::string::npos);
  EXPECT_NE(runner_build_tag().find("compiler="), std::string::npos);
  EXPECT_NE(runner_build_tag().find("stdlib="), std::string::npos);
}

TEST(PluginLoader, ReferencePluginLoadsAndMakesTheReference) {
  const ImplementationSource s = load_implementation(STAGEKIT_TEST_REFERENCE_PLUGIN);
  ASSERT_TRUE(s.refusal.empty()) << s.refusal;
  ASSERT_TRUE(s.factory);
  EXPECT_EQ(s.plugin.at("abi"), "1.0");
  EXPECT_EQ(s.plugin.at("build_tag"), runner_build_tag());
  auto impl = s.factory();
  ASSERT_NE(impl, nullptr);
  EXPECT_EQ(impl->name(), "stagekit-reference");
  EXPECT_TRUE(impl->capabilities().pin_memory);
  auto stager = impl->make_stager({});
  ASSERT_NE(stager, nullptr);
}

TEST(PluginLoader, SkewedBuildTagIsRefusedNamingEachField) {
  const ImplementationSource s = load_implementation(STAGEKIT_TEST_SKEWED_PLUGIN);
  EXPECT_FALSE(s.factory);
  EXPECT_NE(s.refusal.find("build tag differs"), std::string::npos) << s.refusal;
  EXPECT_NE(s.refusal.find("compiler: plugin 'othercc-99', stagekit-conform '" STAGEKIT_PLUGIN_COMPILER "'"),
            std::string::npos)
      << s.refusal;
  EXPECT_NE(s.refusal.find("stagekit: plugin '0.0.1', stagekit-conform '" STAGEKIT_VERSION "'"), std::string::npos)
      << s.refusal;
  EXPECT_EQ(s.refusal.find("stdlib:"), std::string::npos) << "the standard library did not differ: " << s.refusal;
}

TEST(PluginLoader, OtherAbiMajorIsRefusedByVersion) {
  const ImplementationSource s = load_implementation(STAGEKIT_TEST_OLD_ABI_PLUGIN);
  EXPECT_FALSE(s.factory);
  EXPECT_NE(s.refusal.find("plugin ABI 2.0 but stagekit-conform speaks ABI 1.0"), std::string::npos) << s.refusal;
}

TEST(PluginLoader, NonPluginsAreRefusedWithTheCause) {
  const auto missing = load_implementation("/nonexistent/libvendor.so");
  EXPECT_NE(missing.refusal.find("no such file"), std::string::npos) << missing.refusal;

  const auto dir = std::filesystem::temp_directory_path() / "stagekit-plugin-loader-test";
  std::filesystem::create_directories(dir);
  const auto text = dir / "not_a_library.so";
  std::ofstream(text) << "not an ELF file\n";
  const auto garbage = load_implementation(text.string());
  EXPECT_NE(garbage.refusal.find("dlopen failed"), std::string::npos) << garbage.refusal;

  // A real shared library without the entry point: the C library itself.
  const auto libc = load_implementation("/lib/x86_64-linux-gnu/libc.so.6");
  if (std::filesystem::exists("/lib/x86_64-linux-gnu/libc.so.6")) {
    EXPECT_NE(libc.refusal.find("does not export the entry point 'stagekit_conformance_plugin'"), std::string::npos)
        << libc.refusal;
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace stagekit::conformance
