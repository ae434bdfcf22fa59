// keeps_buffers_until_close.cpp — BROKEN: every buffer the stager ever made is kept until close().
// Each new buffer is also put in a list the stager owns, so that close() can release them all in one
// place. The cache still drops the entry of a dead source, so no result is ever overwritten and no
// buffer is reused for another source; but a long-lived stager that stages a new model each time
// (new source storages, the old ones dropped) holds the buffers of every model it ever staged.
#include <vector>

#include "minimal_stager.h"
#include "stagekit/conformance/plugin.h"

namespace stagekit_example {
namespace {

class KeepsBuffersUntilClose final : public MinimalStager {
 public:
  using MinimalStager::MinimalStager;

  void close() override {
    made_.clear();
    MinimalStager::close();
  }

 protected:
  Storage allocate_buffer(std::size_t nbytes) override {
    Storage buffer = MinimalStager::allocate_buffer(nbytes);
    made_.push_back(buffer);  // the flaw: released only by close()
    return buffer;
  }

 private:
  std::vector<Storage> made_;
};

}  // namespace

std::unique_ptr<conformance::Implementation> make_broken() {
  return make_implementation<KeepsBuffersUntilClose>("example-broken-keeps-buffers-until-close");
}

}  // namespace stagekit_example

STAGEKIT_CONFORMANCE_PLUGIN(&stagekit_example::make_broken)
