// reuses_staged_views.cpp — BROKEN: views rebuilt at every stage. The staged tensor of each key is
// kept and handed out again by the next stage() of the same storage under the same key, with the
// new values copied in but the view of the first stage: a tensor re-viewed between checkpoints
// (transposed, sliced otherwise) comes back with the old sizes, strides and offset.
#include <map>
#include <string>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class ReusesStagedViews final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;
  // The views of a stage() are kept once it succeeded (a failed one keeps nothing).
  Value stage(const Value& state_dict) override {
    pending_.clear();
    Value staged;
    try {
      staged = MinimalStager::stage(state_dict);
    } catch (...) {
      pending_.clear();  // the failed stage's buffers are released: keep none of them
      throw;
    }
    for (auto& [path, view] : pending_) views_[path] = std::move(view);
    pending_.clear();
    return staged;
  }
  void close() override {
    views_.clear();
    MinimalStager::close();
  }

 protected:
  Tensor rebuild_view(const Tensor& source, const Storage& staged) override {
    auto it = views_.find(path());
    if (it != views_.end() && staged.defined() && it->second.storage().is_alias_of(staged)) return it->second;
    Tensor view = MinimalStager::rebuild_view(source, staged);
    pending_[path()] = view;
    return view;
  }

 private:
  std::map<std::string, Tensor> views_;    // the staged tensor of each path, from earlier stages
  std::map<std::string, Tensor> pending_;  // those of the stage() running
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ReusesStagedViews>("example-broken-reuses-staged-views");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
