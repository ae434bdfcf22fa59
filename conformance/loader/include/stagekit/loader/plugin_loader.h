// stagekit/loader/plugin_loader.h — the plugin kind of the implementation loader: a shared library
// opened with dlopen and reached through the versioned C entry point of
// stagekit/conformance/plugin.h.
//
// load_plugin() refuses (empty factory, refusal "plugin 'SPEC' refused: WHY") a missing file, a
// library dlopen rejects, one without the entry point or with an incomplete descriptor, another ABI
// major, and a build tag that differs from this program's in any field; refusals name this program
// (loader_name()) and each differing field. The library is opened RTLD_LOCAL, so two plugins (or a
// plugin and the program) never resolve each other's private symbols, and it is never closed.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "stagekit/loader/implementation_loader.h"

namespace stagekit::conformance {

[[nodiscard]] ImplementationSource load_plugin(const std::string& spec);

// The build tag of this program (STAGEKIT_PLUGIN_BUILD_TAG of this build).
[[nodiscard]] std::string runner_build_tag();
// The name refusals give this program: the base name it was started as ("stagekit-conform").
[[nodiscard]] std::string loader_name();
// "key=value;key=value" -> map; an entry without '=' maps to "".
[[nodiscard]] std::map<std::string, std::string> parse_build_tag(const std::string& tag);
// Empty when the tags agree on every field; otherwise one "field: plugin 'x', LOADER 'y'" per
// differing or missing field, separated by "; ".
[[nodiscard]] std::string build_tag_differences(const std::string& plugin_tag, const std::string& runner_tag,
                                                std::string_view loader = "stagekit-conform");

}  // namespace stagekit::conformance
