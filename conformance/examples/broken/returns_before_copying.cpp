// returns_before_copying.cpp — BROKEN: a blocking stage() that returns before its copy is done.
// Storages of 16 MiB and more are handed to a copy thread that starts on its batch 50 ms later, and
// stage() returns without waiting for it (the next stage(), close() or the stager's end waits). The
// staged dict handed out misses those bytes when the caller reads it at once; a little later they
// are all there, so a check that first does something else for long enough sees a complete copy.
#include <chrono>
#include <cstddef>
#include <thread>
#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

constexpr std::size_t kBackgroundBytes = std::size_t{16} << 20;

class ReturnsBeforeCopying final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;
  ~ReturnsBeforeCopying() override { join(); }
  ReturnsBeforeCopying(const ReturnsBeforeCopying&) = delete;
  ReturnsBeforeCopying& operator=(const ReturnsBeforeCopying&) = delete;

  Value stage(const Value& state_dict) override {
    join();  // the copies of the previous stage() are waited for here, not before it returned
    return MinimalStager::stage(state_dict);
  }
  void close() override {
    join();
    MinimalStager::close();
  }

 protected:
  void copy_storage(const Storage& staged, const Storage& source) override {
    if (source.nbytes() < kBackgroundBytes) return MinimalStager::copy_storage(staged, source);
    copies_.emplace_back([this, staged, source] {  // the flaw
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      MinimalStager::copy_storage(staged, source);
    });
  }

 private:
  void join() {
    for (std::thread& t : copies_) t.join();
    copies_.clear();
  }
  std::vector<std::thread> copies_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<ReturnsBeforeCopying>("example-broken-returns-before-copying");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
