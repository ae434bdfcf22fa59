// crashes.cpp — BROKEN: robustness. Staging a complex128 tensor kills the process with SIGSEGV (as a
// wild pointer would); every other tensor stages correctly.
#include <csignal>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class Crashes final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

 protected:
  Value stage_tensor(const Tensor& source) override {
    if (source.dtype() == DType::complex128) std::raise(SIGSEGV);
    return MinimalStager::stage_tensor(source);
  }
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<Crashes>("example-broken-crashes");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
