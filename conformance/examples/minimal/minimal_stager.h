// minimal_stager.h — a small, independent state-dict stager, written only against stagekit's public
// headers (the value model in stagekit/core and the adapter interface in stagekit/conformance).
//
// What it does, in the order stage() does it:
//   * walks the state dict depth first, rebuilding lists, tuples, dicts, sets and objects (each keeps
//     its type: namedtuples, dict subclasses, frozensets, frozen objects and objects with __slots__ stay
//     what they are), copying plain values, and staging every node once: a node reached twice becomes one
//     staged node, and a node that contains itself is rejected with InvalidArgument naming the path;
//   * stages each tensor by staging its storage — one staged buffer per distinct source storage, found
//     by storage identity, never by address — and rebuilding the view (dtype, sizes, strides, offset)
//     on that buffer (a plain tensor, even for a parameter), then staging the tensor's attributes;
//   * takes buffers from stagekit's host allocators: pinned when pin_memory and the storage holds at
//     least pin_memory_min_bytes (and more than zero), shared (memfd) when share_memory;
//   * keeps the buffers in a cache keyed by source storage, so the next stage() of the same sources
//     copies into the same buffers (earlier results alias them, as upstream). An entry is used only
//     while its source storage is alive and has the same size; close() drops the cache;
//   * all or nothing: when stage() fails, the buffers it allocated are released again.
//
// Each step is a small virtual member function, so that a variant (see ../broken/) can change one.
// Not implemented (and not declared): CUDA sources, non-blocking staging, cache_stats().
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "stagekit/conformance/implementation.h"
#include "stagekit/core/state_path.h"
#include "stagekit/core/value.h"

namespace stagekit_example {

using namespace stagekit;
using stagekit::conformance::StagerConfig;

class MinimalStager : public conformance::StagerUnderTest {
 public:
  explicit MinimalStager(const StagerConfig& config) : config_(config) {}

  Value stage(const Value& state_dict) override;
  void close() override { cache_.clear(); }

 protected:
  using Fields = std::vector<std::pair<std::string, Value>>;

  // ---- the steps -------------------------------------------------------------------------------
  // Stages one node: plain values are copied, every other node is staged once per stage() (memo).
  virtual Value stage_value(const Value& source);
  // Stages a tensor: checks it, stages its storage, rebuilds the view, stages its attributes.
  virtual Value stage_tensor(const Tensor& source);
  // Rejects a malformed tensor (InvalidArgument naming the path) before anything is copied for it.
  virtual void check_tensor(const Tensor& source);
  // The staged buffer of the tensor's storage, copied in full; one per cache key within a stage().
  virtual Storage stage_storage(const Tensor& source);
  // The key a storage is cached under: the identity of the source storage.
  virtual const void* cache_key(const Tensor& source) { return source.storage().identity(); }
  // The cached buffer under `key` when it is still valid for `source` (same live storage, same size).
  virtual Storage find_cached(const void* key, const Storage& source);
  // A new host buffer of the memory kind the configuration asks for.
  virtual Storage allocate_buffer(std::size_t nbytes);
  // Copies every byte of `source` into `staged`.
  virtual void copy_storage(const Storage& staged, const Storage& source);
  // A new tensor object with the source's dtype, sizes, strides and storage offset over `staged`.
  virtual Tensor rebuild_view(const Tensor& source, const Storage& staged);
  // Stages the source's attributes onto `staged` (attribute values go through stage_value()).
  virtual void copy_attributes(const Tensor& source, Tensor& staged);
  // Rebuilds an object around its staged fields: same type name, field order, frozen and slots flags.
  virtual Value rebuild_object(const Object& source, Fields staged_fields);
  // Rebuilds a tuple (a namedtuple stays one, with its type and field names) around staged items.
  virtual Value rebuild_tuple(const Tuple& source, std::vector<Value> staged_items);
  // Rebuilds a dict (a dict subclass keeps its type name) around staged values, in key order, with
  // the entries keeps_entry() keeps.
  virtual Value rebuild_dict(const Dict& source, std::vector<Value> staged_values);
  // Whether a dict entry whose staged value is `staged` goes into the staged dict: every one does.
  virtual bool keeps_entry(const Value& /*staged*/) { return true; }

  // ---- helpers -----------------------------------------------------------------------------------
  [[nodiscard]] std::string path() const { return state_.path.str(); }

  struct CacheEntry {
    WeakStorage source;  // the source storage this buffer belongs to (not kept alive by the cache)
    Storage staged;
  };

  const StagerConfig config_;
  std::unordered_map<const void*, CacheEntry> cache_;

 private:
  // What one stage() call remembers; reset at the start and end of every call.
  struct StageState {
    PathStack path;
    std::unordered_map<const void*, Value> memo;        // source node -> staged node
    std::unordered_set<const void*> in_progress;        // nodes being staged (cycle detection)
    std::unordered_map<const void*, Storage> storages;  // cache key -> buffer filled in this stage
    std::vector<const void*> added;                     // cache keys added in this stage
  };
  Value stage_node(const Value& source);
  StageState state_;
};

// The adapter: declares what the stager implements and makes one stager per make_stager() call.
class MinimalImplementation final : public conformance::Implementation {
 public:
  using MakeStager = std::function<std::unique_ptr<conformance::StagerUnderTest>(const StagerConfig&)>;
  MinimalImplementation(std::string name, MakeStager make) : name_(std::move(name)), make_(std::move(make)) {}
  std::string name() const override { return name_; }
  std::string version() const override { return "0.1"; }
  conformance::Capabilities capabilities() const override {
    conformance::Capabilities c;
    c.pin_memory = true;
    c.share_memory = true;
    c.cuda_sources = false;
    c.non_blocking = false;
    c.cache_stats = false;
    return c;
  }
  std::unique_ptr<conformance::StagerUnderTest> make_stager(const StagerConfig& config) override {
    return make_(config);
  }

 private:
  std::string name_;
  MakeStager make_;
};

// An implementation named `name` whose stagers are StagerT (MinimalStager, or a variant of it).
template <class StagerT>
std::unique_ptr<conformance::Implementation> make_implementation(std::string name) {
  return std::make_unique<MinimalImplementation>(
      std::move(name), [](const StagerConfig& config) { return std::make_unique<StagerT>(config); });
}

inline std::unique_ptr<conformance::Implementation> make_minimal_implementation() {
  return make_implementation<MinimalStager>("example-minimal");
}

}  // namespace stagekit_example
