#include "implementation_option.h"

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <string_view>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

namespace stagekit::perf {

bool take_impl_flag(const char* tool, int& argc, char** argv, std::string& spec) {
  const char* env = std::getenv("STAGEKIT_IMPL");
  spec = env != nullptr && *env != '\0' ? env : "reference";
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--impl") {
      if (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("--", 0) == 0) {
        std::cerr << tool << ": --impl needs a value (reference, or the path of a plugin .so)\n";
        return false;
      }
      spec = argv[++i];
    } else if (arg.rfind("--impl=", 0) == 0) {
      spec = arg.substr(7);
    } else if (arg.rfind("--stagekit_impl=", 0) == 0) {
      spec = arg.substr(16);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  return true;
}

std::optional<MeasuredImplementation> load_measured_implementation(const char* tool, const std::string& spec) {
  MeasuredImplementation measured;
  measured.source = conformance::load_implementation(spec);
  if (!measured.source.refusal.empty() || !measured.source.factory) {
    std::cerr << fmt::format("{}: --impl {}: {}\n", tool, spec,
                             measured.source.refusal.empty() ? "no implementation" : measured.source.refusal);
    return std::nullopt;
  }
  try {
    measured.implementation = measured.source.factory();
  } catch (const std::exception& e) {
    std::cerr << fmt::format("{}: --impl {}: the implementation could not be made: {}\n", tool, spec, e.what());
    return std::nullopt;
  }
  if (!measured.implementation) {
    std::cerr << fmt::format("{}: --impl {}: the implementation factory returned nothing\n", tool, spec);
    return std::nullopt;
  }
  return measured;
}

std::string impl_flag_help() {
  const std::string indent(34, ' ');  // the kinds under the description column
  std::string kinds;
  const std::string lines = conformance::implementation_kinds_help();
  for (std::size_t start = 0; start < lines.size();) {
    const std::size_t end = std::min(lines.find('\n', start), lines.size());
    kinds += indent + lines.substr(start, end - start) + "\n";
    start = end + 1;
  }
  return "  --impl SPEC                       the implementation measured, loaded as stagekit-conform loads it\n"
         "                                    (default: $STAGEKIT_IMPL, else reference; --stagekit_impl=SPEC\n"
         "                                    is the same), one of:\n" +
         kinds +
         "                                    a spec of no known kind, a refused plugin or an implementation\n"
         "                                    that cannot be made: a message and exit status 2\n";
}

void add_common_context(const MeasuredImplementation& measured, const nlohmann::json& env) {
  const conformance::Implementation& impl = *measured.implementation;
  const nlohmann::json& plugin = measured.source.plugin;
  benchmark::AddCustomContext("stagekit_schema_version", "1");
  benchmark::AddCustomContext("implementation", impl.name());
  benchmark::AddCustomContext("implementation_version", impl.version());
  benchmark::AddCustomContext("implementation_spec", measured.source.spec);
  benchmark::AddCustomContext("implementation_kind", measured.source.kind);
  benchmark::AddCustomContext("implementation_plugin", plugin.is_object() ? plugin.value("path", "") : "");
  benchmark::AddCustomContext("git_sha", env["git"].value("sha", "unknown"));
  benchmark::AddCustomContext("git_dirty", env["git"]["dirty"].dump());
  benchmark::AddCustomContext("compiler", env.value("compiler", "unknown"));
  benchmark::AddCustomContext("stagekit_build_type", env.value("stagekit_build_type", "unknown"));
  benchmark::AddCustomContext("cpu_model", env["host"].value("cpu_model", "unknown"));
  benchmark::AddCustomContext("cpu_count", std::to_string(env["host"].value("cpu_count", 0U)));
  benchmark::AddCustomContext("memory_total", env["host"].value("memory_total", "unknown"));
  benchmark::AddCustomContext("thp_enabled", env["host"].value("thp_enabled", "unknown"));
  benchmark::AddCustomContext("thp_shmem_enabled", env["host"].value("thp_shmem_enabled", "unknown"));
}

}  // namespace stagekit::perf
