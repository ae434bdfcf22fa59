// Where the implementation under test comes from: the built-in reference, or a plugin shared library
// loaded through the versioned C entry point of stagekit/conformance/plugin.h.
//
// A plugin that cannot be used (dlopen or dlsym fails, ABI major or build tag differ, no entry
// point) gives a source with an empty factory and a `refusal` naming exactly what is wrong; the
// runner then reports every selected case as failed with that reason. A loaded plugin is never
// unloaded (objects it made may outlive any scope).
#pragma once

#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/implementation.h"

namespace stagekit::conformance {

struct ImplementationSource {
  std::string spec;               // "reference" or the plugin's path, as given
  ImplementationFactory factory;  // empty when refused
  std::string refusal;            // why the implementation cannot be used; empty when usable
  nlohmann::json plugin;          // {"path", "abi", "build_tag"} for plugins; null for built-ins
};

// "reference" is the built-in reference implementation; anything else is a plugin path.
[[nodiscard]] ImplementationSource load_implementation(const std::string& spec);

// The build tag of stagekit-conform itself (STAGEKIT_PLUGIN_BUILD_TAG of this build).
[[nodiscard]] std::string runner_build_tag();
// "key=value;key=value" -> map; an entry without '=' maps to "".
[[nodiscard]] std::map<std::string, std::string> parse_build_tag(const std::string& tag);
// Empty when the tags agree on every field; otherwise one "field: plugin 'x', stagekit-conform 'y'"
// per differing or missing field, separated by "; ".
[[nodiscard]] std::string build_tag_differences(const std::string& plugin_tag, const std::string& runner_tag);

}  // namespace stagekit::conformance
