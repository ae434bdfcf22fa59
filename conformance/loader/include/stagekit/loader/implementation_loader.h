// stagekit/loader/implementation_loader.h — the one way every stagekit tool (stagekit-conform,
// stagekit-bench, stagekit-dist-bench) turns an implementation spec (--impl SPEC, $STAGEKIT_IMPL)
// into the implementation under test (target stagekit::implementation_loader).
//
// A spec is of one *kind*. The kinds are a table (implementation_kinds()), tried in order; the first
// kind that claims a spec loads it:
//   reference   the built-in reference implementation;
//   PATH.so     a plugin shared library exporting the entry point of stagekit/conformance/plugin.h
//               (stagekit/loader/plugin_loader.h): any spec holding a '/' or ending in .so / .so.N;
//   torch[:PACKAGE.MODULE:FACTORY]
//               a Python stager on torch tensors (stagekit/torch/torch_kind.h).
// Adding a kind is one row of that table (implementation_loader.cpp) and its load function.
//
// Invariants: load_implementation() never throws for a bad spec. A spec that no kind claims gives a
// source with an empty `kind` and a refusal naming the kinds; an implementation that cannot be used
// (a plugin that cannot be opened, speaks another ABI or was built differently) gives its kind, an
// empty factory and a refusal naming exactly what is wrong. A loaded plugin is never unloaded
// (objects it made may outlive any scope).
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "stagekit/conformance/implementation.h"
#include "stagekit/testing/child_process.h"

namespace stagekit::conformance {

struct ImplementationSource {
  std::string spec;               // as given
  std::string kind;               // the kind that claimed the spec ("reference", "plugin"); empty: none did
  ImplementationFactory factory;  // empty when refused
  std::string refusal;            // why the implementation cannot be used; empty when usable
  nlohmann::json plugin;          // {"path", "abi", "build_tag"} for plugins; null for built-ins
  // Where isolated runs fork each case's process from: null, the runner itself; else a fork server
  // prepared once (the torch kind's starts the interpreter and imports torch there, so that the
  // runner's own process never does and every case starts warm).
  std::shared_ptr<const testing::ForkServer> fork_server;
};

// One kind of implementation spec.
struct ImplementationKind {
  std::string_view name;     // "reference", "plugin": ImplementationSource::kind
  std::string_view syntax;   // how a spec of this kind is written, for --help ("reference", "PATH.so")
  std::string_view summary;  // what it loads, one line for --help
  bool (*claims)(std::string_view spec);
  ImplementationSource (*load)(const std::string& spec);  // sets spec, kind and factory or refusal
};

// The kinds, in the order they are tried.
[[nodiscard]] std::span<const ImplementationKind> implementation_kinds();

// The implementation a spec names (see the invariants above).
[[nodiscard]] ImplementationSource load_implementation(const std::string& spec);

// One line per kind ("  reference   the built-in ..."), for the --help of a tool taking --impl.
[[nodiscard]] std::string implementation_kinds_help();

// What a result file records about where the measured implementation came from:
// {"spec", "kind", "plugin": {"path", "abi", "build_tag"} (plugins only)}.
[[nodiscard]] nlohmann::json describe_source(const ImplementationSource& source);

}  // namespace stagekit::conformance
