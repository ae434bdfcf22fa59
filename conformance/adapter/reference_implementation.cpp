#include "reference_implementation.h"

#include "stagekit/config.h"
#include "stagekit/stage/state_dict_stager.h"

namespace stagekit::conformance {
namespace {

class ReferencePending final : public PendingResult {
 public:
  explicit ReferencePending(PendingStage pending) : pending_(std::move(pending)) {}
  Value wait() override { return pending_.wait(); }

 private:
  PendingStage pending_;
};

class ReferenceStager final : public StagerUnderTest {
 public:
  explicit ReferenceStager(const StagerConfig& c)
      : stager_(StagerOptions{c.pin_memory, c.share_memory, c.pin_memory_min_bytes}) {}
  Value stage(const Value& sd) override { return stager_.stage(sd); }
  std::unique_ptr<PendingResult> stage_async(const Value& sd) override {
    return std::make_unique<ReferencePending>(stager_.stage_async(sd));
  }
  void close() override { stager_.close(); }
  std::optional<CacheStats> cache_stats() const override {
    const StagerStats s = stager_.stats();
    return CacheStats{s.cached_storages, s.cached_bytes, s.pinned_bytes, s.shared_bytes};
  }

 private:
  StateDictStager stager_;
};

class ReferenceImplementation final : public Implementation {
 public:
  std::string name() const override { return "stagekit-reference"; }
  std::string version() const override { return STAGEKIT_VERSION; }
  Capabilities capabilities() const override {
    Capabilities c;
    c.pin_memory = true;
    c.share_memory = true;
    c.cuda_sources = STAGEKIT_HAVE_CUDA != 0;
    c.non_blocking = true;
    c.cache_stats = true;
    return c;
  }
  std::unique_ptr<StagerUnderTest> make_stager(const StagerConfig& config) override {
    return std::make_unique<ReferenceStager>(config);
  }
};

}  // namespace

std::unique_ptr<Implementation> make_reference_implementation() { return std::make_unique<ReferenceImplementation>(); }

}  // namespace stagekit::conformance
