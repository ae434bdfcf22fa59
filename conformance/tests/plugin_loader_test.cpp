// The implementation loader: specs go to the kind that claims them (an unknown one is refused
// naming the kinds); the reference plugin loads through the C entry point; a skewed build tag,
// another ABI major, a library without the entry point, a non-library and a missing file are
// refused with a message saying exactly what is wrong; the environment names the kernel's huge page
// modes and stagekit's build type.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "stagekit/config.h"
#include "stagekit/conformance/plugin.h"
#include "stagekit/loader/environment.h"
#include "stagekit/loader/implementation_loader.h"
#include "stagekit/loader/plugin_loader.h"

#if STAGEKIT_HAVE_PYTHON
extern "C" int Py_IsInitialized();  // libpython, linked in with the torch kind
#endif

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

TEST(ImplementationLoader, EachSpecGoesToTheKindThatClaimsIt) {
  std::vector<std::string> names;
  for (const ImplementationKind& kind : implementation_kinds()) names.emplace_back(kind.name);
  EXPECT_EQ(names, (std::vector<std::string>{"reference", "torch", "plugin"}));

  const ImplementationSource reference = load_implementation("reference");
  EXPECT_EQ(reference.kind, "reference");
  EXPECT_EQ(reference.refusal, "");
  ASSERT_TRUE(reference.factory);
  EXPECT_EQ(reference.factory()->name(), "stagekit-reference");
  EXPECT_TRUE(reference.plugin.is_null());
  EXPECT_EQ(describe_source(reference), (nlohmann::json{{"spec", "reference"}, {"kind", "reference"}}));

  for (const std::string spec : {"./libx.so", "/opt/vendor/libx.so.1", "libx.so", "dir/x"}) {
    const ImplementationSource s = load_implementation(spec);
    EXPECT_EQ(s.kind, "plugin") << spec;
    EXPECT_FALSE(s.factory) << spec;
    EXPECT_NE(s.refusal.find("plugin '" + spec + "' refused: no such file"), std::string::npos) << s.refusal;
  }

  // The torch kind claims "torch" and "torch:...", and loading starts no interpreter: the factory
  // (or, without Python in the build, a refusal saying so) is all it gives.
  for (const std::string spec : {"torch", "torch:my_pkg.staging:MyStager"}) {
    const ImplementationSource s = load_implementation(spec);
    EXPECT_EQ(s.kind, "torch") << spec;
#if STAGEKIT_HAVE_PYTHON
    EXPECT_TRUE(s.factory) << spec;
    EXPECT_EQ(s.refusal, "") << spec;
    EXPECT_TRUE(s.fork_server) << "the cases start from a process that imported torch once";
#else
    EXPECT_FALSE(s.factory) << spec;
    EXPECT_NE(s.refusal.find("built without the torch route"), std::string::npos) << s.refusal;
#endif
#if STAGEKIT_HAVE_PYTHON
    EXPECT_EQ(Py_IsInitialized(), 0) << "loading a spec must not start Python";
#endif
  }
  const ImplementationSource malformed = load_implementation("torch:no_factory_named");
  EXPECT_EQ(malformed.kind, "torch");
  EXPECT_FALSE(malformed.factory);
  EXPECT_NE(malformed.refusal.find("not of the form torch:PACKAGE.MODULE:FACTORY"), std::string::npos)
      << malformed.refusal;
}

TEST(ImplementationLoader, ASpecNoKindClaimsIsRefusedNamingTheKinds) {
  for (const std::string spec : {"referenc", "pytorch", ""}) {
    const ImplementationSource s = load_implementation(spec);
    EXPECT_EQ(s.kind, "") << spec;
    EXPECT_FALSE(s.factory) << spec;
    EXPECT_EQ(s.refusal, "unknown implementation '" + spec +
                             "': expected one of 'reference' (reference), "
                             "'torch[:PACKAGE.MODULE:FACTORY]' (torch), 'PATH.so' (plugin)");
  }
  const std::string help = implementation_kinds_help();
  EXPECT_NE(help.find("  reference                       the built-in reference implementation"), std::string::npos)
      << help;
  EXPECT_NE(help.find("  torch[:PACKAGE.MODULE:FACTORY]  a Python stager"), std::string::npos) << help;
  EXPECT_NE(help.find("  PATH.so                         a plugin library"), std::string::npos) << help;
}

TEST(Environment, NamesTheKernelHugePageModesAndTheBuildType) {
  EXPECT_EQ(sysfs_selected_choice("always [madvise] never\n"), "madvise");
  EXPECT_EQ(sysfs_selected_choice("always within_size advise [never] deny force\n"), "never");
  EXPECT_EQ(sysfs_selected_choice("  plain\n"), "plain");
  EXPECT_EQ(sysfs_selected_choice("\n"), "unknown");
  EXPECT_EQ(kernel_thp_setting("no_such_file"), "unknown");
  const auto env = describe_environment();
  for (const char* key : {"thp_enabled", "thp_shmem_enabled"}) {
    const std::string mode = env.at("host").at(key).get<std::string>();
    EXPECT_FALSE(mode.empty()) << key;
    EXPECT_EQ(mode.find_first_of("[] \n"), std::string::npos) << key << ": " << mode;
  }
  EXPECT_EQ(env.at("stagekit_build_type"), stagekit_build_type());
  EXPECT_EQ(stagekit_build_type(), std::string(STAGEKIT_TEST_BUILD_TYPE).empty() ? "none" : STAGEKIT_TEST_BUILD_TYPE);
}

TEST(PluginLoader, ReferencePluginLoadsAndMakesTheReference) {
  const ImplementationSource s = load_implementation(STAGEKIT_TEST_REFERENCE_PLUGIN);
  ASSERT_TRUE(s.refusal.empty()) << s.refusal;
  ASSERT_TRUE(s.factory);
  EXPECT_EQ(s.kind, "plugin");
  EXPECT_EQ(s.plugin.at("path"), std::filesystem::absolute(STAGEKIT_TEST_REFERENCE_PLUGIN).string());
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
  const std::string me = loader_name();
  EXPECT_EQ(me, "stagekit_harness_tests") << "refusals name the program that loads the plugin";
  EXPECT_NE(s.refusal.find("compiler: plugin 'othercc-99', " + me + " '" STAGEKIT_PLUGIN_COMPILER "'"),
            std::string::npos)
      << s.refusal;
  EXPECT_NE(s.refusal.find("stagekit: plugin '0.0.1', " + me + " '" STAGEKIT_VERSION "'"), std::string::npos)
      << s.refusal;
  EXPECT_EQ(s.refusal.find("stdlib:"), std::string::npos) << "the standard library did not differ: " << s.refusal;
}

TEST(PluginLoader, OtherAbiMajorIsRefusedByVersion) {
  const ImplementationSource s = load_implementation(STAGEKIT_TEST_OLD_ABI_PLUGIN);
  EXPECT_FALSE(s.factory);
  EXPECT_NE(s.refusal.find("plugin ABI 2.0 but " + loader_name() + " speaks ABI 1.0"), std::string::npos) << s.refusal;
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
