#include "stagekit/loader/implementation_loader.h"

#include <array>

#include <fmt/format.h>

#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/loader/plugin_loader.h"
#include "stagekit/torch/torch_kind.h"

namespace stagekit::conformance {
namespace {

bool claims_reference(std::string_view spec) { return spec == "reference"; }

ImplementationSource load_reference(const std::string& spec) {
  ImplementationSource source;
  source.spec = spec;
  source.kind = "reference";
  source.factory = &make_reference_implementation;
  return source;
}

// A path: it holds a directory separator, or names a shared library (libx.so, libx.so.1).
bool claims_plugin(std::string_view spec) {
  if (spec.find('/') != std::string_view::npos) return true;
  if (spec.size() > 3 && spec.substr(spec.size() - 3) == ".so") return true;
  return spec.find(".so.") != std::string_view::npos;
}

// The kinds, tried in order. A new kind is a row here (with a `claims` that leaves the other rows'
// specs alone) and its load function.
constexpr std::array kKinds = {
    ImplementationKind{"reference", "reference", "the built-in reference implementation", &claims_reference,
                       &load_reference},
    ImplementationKind{"torch", "torch[:PACKAGE.MODULE:FACTORY]",
                       "a Python stager on torch tensors (alone: PyTorch's own StateDictStager)", &claims_torch,
                       &load_torch},
    ImplementationKind{"plugin", "PATH.so", "a plugin library (any spec with a '/' or ending in .so)", &claims_plugin,
                       &load_plugin},
};

}  // namespace

std::span<const ImplementationKind> implementation_kinds() { return kKinds; }

ImplementationSource load_implementation(const std::string& spec) {
  for (const ImplementationKind& kind : implementation_kinds()) {
    if (kind.claims(spec)) return kind.load(spec);
  }
  ImplementationSource source;
  source.spec = spec;
  std::string kinds;
  for (const ImplementationKind& kind : implementation_kinds()) {
    kinds += fmt::format("{}'{}' ({})", kinds.empty() ? "" : ", ", kind.syntax, kind.name);
  }
  source.refusal = fmt::format("unknown implementation '{}': expected one of {}", spec, kinds);
  return source;
}

std::string implementation_kinds_help() {
  std::size_t width = 0;
  for (const ImplementationKind& kind : implementation_kinds()) width = std::max(width, kind.syntax.size());
  std::string out;
  for (const ImplementationKind& kind : implementation_kinds()) {
    out += fmt::format("  {:<{}}  {}\n", kind.syntax, width, kind.summary);
  }
  return out;
}

nlohmann::json describe_source(const ImplementationSource& source) {
  nlohmann::json j = {{"spec", source.spec}, {"kind", source.kind}};
  if (!source.plugin.is_null()) j["plugin"] = source.plugin;
  return j;
}

}  // namespace stagekit::conformance
