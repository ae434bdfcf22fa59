#include "stagekit/loader/environment.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "stagekit/config.h"
#include "stagekit/core/cuda.h"

namespace stagekit::conformance {
namespace {

std::string run_command(const std::string& command) {
  std::string out;
  if (FILE* pipe = popen(command.c_str(), "r")) {
    std::array<char, 256> buf{};
    while (std::fgets(buf.data(), buf.size(), pipe) != nullptr) out += buf.data();
    pclose(pipe);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
  return out;
}

std::string proc_field(const char* file, const std::string& key) {
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) {
      const auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      const auto begin = line.find_first_not_of(" \t", colon + 1);
      return begin == std::string::npos ? std::string() : line.substr(begin);
    }
  }
  return {};
}

nlohmann::json git_info() {
  nlohmann::json g;
  if (const char* sha = std::getenv("STAGEKIT_GIT_SHA")) {
    g["sha"] = sha;
    g["dirty"] = nullptr;
    return g;
  }
  const std::string dir = STAGEKIT_SOURCE_DIR;
  std::string sha = run_command("git -C '" + dir + "' rev-parse --verify -q HEAD 2>/dev/null");
  if (sha.size() != 40) sha.clear();
  g["sha"] = sha.empty() ? "unknown" : sha;
  g["dirty"] =
      sha.empty()
          ? nlohmann::json(nullptr)
          : nlohmann::json(
                !run_command("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null").empty());
  return g;
}

std::string compiler() {
#if defined(__clang__)
  return std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  return std::string("gcc ") + __VERSION__;
#else
  return "unknown";
#endif
}

}  // namespace

std::string stagekit_build_type() {
  const std::string type = STAGEKIT_BUILD_TYPE;
  return type.empty() ? "none" : type;
}

std::string sysfs_selected_choice(std::string_view text) {
  const std::size_t open = text.find('[');
  const std::size_t close = open == std::string_view::npos ? open : text.find(']', open);
  if (close != std::string_view::npos) return std::string(text.substr(open + 1, close - open - 1));
  const std::size_t begin = text.find_first_not_of(" \t\n");
  if (begin == std::string_view::npos) return "unknown";
  const std::size_t end = text.find_last_not_of(" \t\n");
  return std::string(text.substr(begin, end - begin + 1));
}

std::string kernel_thp_setting(std::string_view file) {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/" + std::string(file));
  if (!in) return "unknown";
  std::ostringstream text;
  text << in.rdbuf();
  return sysfs_selected_choice(text.str());
}

nlohmann::json describe_environment() {
  nlohmann::json env;
  env["git"] = git_info();
  env["stagekit_version"] = STAGEKIT_VERSION;
  env["stagekit_build_type"] = stagekit_build_type();
  env["compiler"] = compiler();
  env["cplusplus"] = __cplusplus;
  const auto& cuda = cuda::availability();
  if (cuda.available) {
    env["cuda"] = {{"runtime_version", cuda.runtime_version},
                   {"driver_version", cuda.driver_version},
                   {"devices", cuda.device_count},
                   {"description", cuda::describe()}};
  } else {
    env["cuda"] = "none";
    env["cuda_reason"] = cuda.reason;
  }
  env["cuda_compiled"] = cuda.compiled;
  utsname u{};
  uname(&u);
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  const std::string mem = proc_field("/proc/meminfo", "MemTotal");
  env["host"] = {{"hostname", host},
                 {"kernel", std::string(u.sysname) + " " + u.release},
                 {"machine", u.machine},
                 {"cpu_model", proc_field("/proc/cpuinfo", "model name")},
                 {"cpu_count", std::thread::hardware_concurrency()},
                 {"memory_total", mem},
                 {"thp_enabled", kernel_thp_setting("enabled")},
                 {"thp_shmem_enabled", kernel_thp_setting("shmem_enabled")},
                 {"euid", geteuid()}};
  return env;
}

}  // namespace stagekit::conformance
