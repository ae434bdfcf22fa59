// A plugin that is not the reference to the bench tools: the reference under another name
// ("renamed-reference"). stagekit-dist-bench must measure its utilities and replication stager
// through the adapter, and report the rows that time the reference's own parts as not_supported.
#include <memory>
#include <string>

#include "stagekit/adapter/reference_implementation.h"
#include "stagekit/conformance/plugin.h"

namespace {

namespace sc = stagekit::conformance;

class RenamedReference final : public sc::Implementation {
 public:
  std::string name() const override { return "renamed-reference"; }
  std::string version() const override { return inner_->version(); }
  sc::Capabilities capabilities() const override { return inner_->capabilities(); }
  std::unique_ptr<sc::StagerUnderTest> make_stager(const sc::StagerConfig& config) override {
    return inner_->make_stager(config);
  }
  std::unique_ptr<sc::StateDictUtilitiesUnderTest> make_utilities() override { return inner_->make_utilities(); }
  std::unique_ptr<sc::ReplicationStagerUnderTest> make_replication_stager(
      stagekit::dist::Communicator& comm, const sc::ReplicationConfig& config) override {
    return inner_->make_replication_stager(comm, config);
  }
  stagekit::Value load_replica(const std::string& path) override { return inner_->load_replica(path); }

 private:
  std::unique_ptr<sc::Implementation> inner_ = sc::make_reference_implementation();
};

std::unique_ptr<sc::Implementation> make_renamed_reference() { return std::make_unique<RenamedReference>(); }

}  // namespace

STAGEKIT_CONFORMANCE_PLUGIN(&make_renamed_reference)
