// torch_implementation.h (internal to the torch bridge) — a Python stager on torch tensors behind the
// adapter interface: the factory named by a torch spec, its capabilities (stagekit_torch.protocol),
// and stagers whose stage() converts the state dict to torch, calls the Python stage(), and converts
// the result back (conversion.h); and, where the factory has one, the asynchronous staging surface
// (DefaultStager, BlockingAsyncStager, async_save), whose Python futures become C++ futures.
//
// Invariants: every call takes the GIL itself; a Python exception becomes a stagekit error carrying
// its type, message and last traceback lines; Python references are dropped with the GIL held.
#pragma once

#include <memory>
#include <string>

#include <pybind11/pybind11.h>

#include "stagekit/conformance/implementation.h"

namespace stagekit::torch_bridge {

class TorchImplementation final : public conformance::Implementation {
 public:
  // `target` is "PACKAGE.MODULE:FACTORY", or empty for PyTorch's own StateDictStager.
  explicit TorchImplementation(const std::string& target);
  ~TorchImplementation() override;
  TorchImplementation(const TorchImplementation&) = delete;
  TorchImplementation& operator=(const TorchImplementation&) = delete;

  [[nodiscard]] std::string name() const override { return name_; }
  [[nodiscard]] std::string version() const override { return version_; }
  [[nodiscard]] conformance::Capabilities capabilities() const override { return caps_; }
  [[nodiscard]] std::unique_ptr<conformance::StagerUnderTest> make_stager(
      const conformance::StagerConfig& config) override;
  // The async-staging surface (Capabilities::async_staging): the factory's stagekit_async_staging,
  // or PyTorch's own for PyTorch's StateDictStager.
  [[nodiscard]] std::unique_ptr<conformance::AsyncStagerUnderTest> make_default_stager(
      const conformance::StagingOptions& options) override;
  [[nodiscard]] std::unique_ptr<conformance::AsyncStagerUnderTest> make_blocking_async_stager(
      const conformance::BlockingAsyncStagerConfig& config) override;
  [[nodiscard]] conformance::AsyncSaveReturn async_save(const Value& state_dict, const std::string& directory,
                                                        conformance::AsyncStagerUnderTest* stager) override;
  [[nodiscard]] Value load_checkpoint(const std::string& directory) override;

 private:
  pybind11::object factory_;
  pybind11::object async_staging_;  // None without Capabilities::async_staging
  std::string name_;
  std::string version_;
  conformance::Capabilities caps_;
};

}  // namespace stagekit::torch_bridge
