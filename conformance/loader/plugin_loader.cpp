#include "stagekit/loader/plugin_loader.h"

#include <dlfcn.h>
#include <errno.h>

#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "stagekit/conformance/plugin.h"

namespace stagekit::conformance {
namespace {

// Owns an implementation made by a plugin and gives it back through the plugin's release().
class PluginImplementation final : public Implementation {
 public:
  PluginImplementation(Implementation* impl, void (*release)(stagekit_plugin_implementation*))
      : impl_(impl), release_(release) {}
  ~PluginImplementation() override { release_(reinterpret_cast<stagekit_plugin_implementation*>(impl_)); }
  PluginImplementation(const PluginImplementation&) = delete;
  PluginImplementation& operator=(const PluginImplementation&) = delete;

  std::string name() const override { return impl_->name(); }
  std::string version() const override { return impl_->version(); }
  Capabilities capabilities() const override { return impl_->capabilities(); }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) override {
    return impl_->make_stager(config);
  }
  std::unique_ptr<StateDictUtilitiesUnderTest> make_utilities() override { return impl_->make_utilities(); }
  std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager(dist::Communicator& comm,
                                                                      const ReplicationConfig& config) override {
    return impl_->make_replication_stager(comm, config);
  }
  Value load_replica(const std::string& path) override { return impl_->load_replica(path); }
  std::unique_ptr<AsyncStagerUnderTest> make_default_stager(const StagingOptions& options) override {
    return impl_->make_default_stager(options);
  }
  std::unique_ptr<AsyncStagerUnderTest> make_blocking_async_stager(const BlockingAsyncStagerConfig& config) override {
    return impl_->make_blocking_async_stager(config);
  }
  AsyncSaveReturn async_save(const Value& sd, const std::string& directory, AsyncStagerUnderTest* stager) override {
    return impl_->async_save(sd, directory, stager);
  }
  Value load_checkpoint(const std::string& directory) override { return impl_->load_checkpoint(directory); }

 private:
  Implementation* impl_;
  void (*release_)(stagekit_plugin_implementation*);
};

std::string status_name(int status) {
  switch (status) {
    case STAGEKIT_PLUGIN_INVALID_ARGUMENT: return "invalid argument";
    case STAGEKIT_PLUGIN_RESOURCE_EXHAUSTED: return "resource exhausted";
    case STAGEKIT_PLUGIN_FAILED_PRECONDITION: return "failed precondition";
    case STAGEKIT_PLUGIN_UNIMPLEMENTED: return "unimplemented";
    case STAGEKIT_PLUGIN_INTERNAL: return "internal";
    default: return fmt::format("status {}", status);
  }
}

ImplementationSource refuse(ImplementationSource source, std::string why) {
  source.factory = nullptr;
  source.refusal = fmt::format("plugin '{}' refused: {}", source.spec, why);
  return source;
}

}  // namespace

std::string runner_build_tag() { return STAGEKIT_PLUGIN_BUILD_TAG; }

std::string loader_name() {
  const char* name = program_invocation_short_name;
  return name != nullptr && *name != '\0' ? name : "this program";
}

std::map<std::string, std::string> parse_build_tag(const std::string& tag) {
  std::map<std::string, std::string> fields;
  std::size_t start = 0;
  while (start <= tag.size()) {
    const std::size_t end = std::min(tag.find(';', start), tag.size());
    const std::string item = tag.substr(start, end - start);
    if (!item.empty()) {
      const std::size_t eq = item.find('=');
      if (eq == std::string::npos)
        fields[item] = "";
      else
        fields[item.substr(0, eq)] = item.substr(eq + 1);
    }
    start = end + 1;
  }
  return fields;
}

std::string build_tag_differences(const std::string& plugin_tag, const std::string& runner_tag,
                                  std::string_view loader) {
  const auto plugin = parse_build_tag(plugin_tag);
  const auto runner = parse_build_tag(runner_tag);
  std::set<std::string> keys;
  for (const auto& [k, v] : plugin) keys.insert(k);
  for (const auto& [k, v] : runner) keys.insert(k);
  std::string out;
  for (const std::string& k : keys) {
    const auto p = plugin.find(k);
    const auto r = runner.find(k);
    const std::string pv = p == plugin.end() ? "<missing>" : "'" + p->second + "'";
    const std::string rv = r == runner.end() ? "<missing>" : "'" + r->second + "'";
    if (pv == rv) continue;
    if (!out.empty()) out += "; ";
    out += fmt::format("{}: plugin {}, {} {}", k, pv, loader, rv);
  }
  return out;
}

ImplementationSource load_plugin(const std::string& spec) {
  ImplementationSource source;
  source.spec = spec;
  source.kind = "plugin";
  source.plugin = {{"path", std::filesystem::absolute(spec).string()}};
  if (!std::filesystem::exists(spec)) return refuse(std::move(source), "no such file");

  // RTLD_LOCAL: two plugins (or a plugin and the runner) never resolve each other's private symbols.
  void* handle = dlopen(std::filesystem::absolute(spec).c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) return refuse(std::move(source), fmt::format("dlopen failed: {}", dlerror()));
  dlerror();
  void* symbol = dlsym(handle, STAGEKIT_PLUGIN_ENTRY_POINT);
  if (symbol == nullptr) {
    return refuse(std::move(source),
                  fmt::format("it does not export the entry point '{}' (define it with STAGEKIT_CONFORMANCE_PLUGIN)",
                              STAGEKIT_PLUGIN_ENTRY_POINT));
  }
  const auto entry = reinterpret_cast<stagekit_plugin_entry_point>(symbol);
  const stagekit_plugin* descriptor = entry();
  if (descriptor == nullptr) return refuse(std::move(source), "its entry point returned no descriptor");

  const std::string abi = fmt::format("{}.{}", descriptor->abi_major, descriptor->abi_minor);
  source.plugin["abi"] = abi;
  if (descriptor->abi_major != STAGEKIT_PLUGIN_ABI_MAJOR) {
    return refuse(std::move(source), fmt::format("plugin ABI {} but {} speaks ABI {}.{} (the major versions must be "
                                                 "equal); rebuild the plugin against stagekit {}",
                                                 abi, loader_name(), STAGEKIT_PLUGIN_ABI_MAJOR,
                                                 STAGEKIT_PLUGIN_ABI_MINOR, STAGEKIT_VERSION));
  }
  const std::string tag = descriptor->build_tag == nullptr ? "" : descriptor->build_tag;
  source.plugin["build_tag"] = tag;
  if (const std::string diff = build_tag_differences(tag, runner_build_tag(), loader_name()); !diff.empty()) {
    return refuse(std::move(source), fmt::format("build tag differs: {}; rebuild the plugin with the compiler, "
                                                 "standard library and stagekit version of {}",
                                                 diff, loader_name()));
  }
  if (descriptor->create == nullptr || descriptor->release == nullptr) {
    return refuse(std::move(source), "its descriptor lacks create() or release()");
  }
  const auto create = descriptor->create;
  const auto release = descriptor->release;
  const std::string path = spec;
  source.factory = [create, release, path]() -> std::unique_ptr<Implementation> {
    stagekit_plugin_implementation* raw = nullptr;
    char message[1024] = {};
    const int status = create(&raw, message, sizeof message);
    if (status == STAGEKIT_PLUGIN_UNIMPLEMENTED) {
      throw Unsupported(fmt::format("plugin '{}' cannot make an implementation here: {}", path, message));
    }
    if (status != STAGEKIT_PLUGIN_OK || raw == nullptr) {
      throw InternalError(fmt::format("plugin '{}' create() failed ({}): {}", path, status_name(status),
                                      status == STAGEKIT_PLUGIN_OK ? "returned no implementation" : message));
    }
    return std::make_unique<PluginImplementation>(reinterpret_cast<Implementation*>(raw), release);
  };
  return source;
}

}  // namespace stagekit::conformance
