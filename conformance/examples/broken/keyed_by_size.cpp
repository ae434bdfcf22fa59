// keyed_by_size.cpp — BROKEN: cache identity. A cached buffer is found by size instead of by
// source storage, so distinct storages of one size are staged into the same buffer.
#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class KeyedBySize final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Storage find_cached(const void*, const Storage& source) override {
    for (const auto& [key, entry] : cache_) {
      if (!entry.source.expired() && entry.staged.nbytes() == source.nbytes()) return entry.staged;
    }
    return {};
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<KeyedBySize>("example-broken-keyed-by-size");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
