// Sources that already sit in the memory a configuration asks for (page-locked, shared, both: a
// model shared between processes, parameters pinned for fast transfers) are copied like any other
// (B.1.3: every staged storage is a new one). A stager that hands such a source back as its own
// staged copy (`pin_memory()` and `share_memory_()` return the tensor itself when it already is
// pinned or shared) makes a checkpoint that follows the live model.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr std::int64_t kReadyElements = 16 * 1024;  // 64 KiB of float32

Tensor source_in(MemoryKind kind, std::uint64_t seed) {
  const Tensor values = Tensor::random({kReadyElements}, DType::float32, seed);
  const Storage storage = Storage::allocate(values.storage().nbytes(), Device::cpu(), kind);
  copy_bytes(storage, 0, values.storage(), 0, storage.nbytes());
  return Tensor::from_storage(storage, DType::float32, {kReadyElements}, {1}, 0);
}

void ready_sources_case(CaseContext& ctx, Source, PinShare cfg) {
  const Tensor both = source_in(MemoryKind::pinned_shared, 1901);
  auto d = std::make_shared<Dict>();
  d->set("pinned", source_in(MemoryKind::pinned, 1902));
  d->set("shared", source_in(MemoryKind::shared, 1903));
  d->set("pinned_shared", both);
  d->set("pinned_shared_view", both.narrow(0, 100, 50));
  d->set("pageable", source_in(MemoryKind::pageable, 1904));
  const Value sd(d);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, sd, "sources already pinned or shared");
  ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  // The staged dict is a snapshot: what the model does next does not reach it.
  std::vector<std::pair<std::string, Tensor>> before;
  for (const auto& [key, value] : d->entries()) {
    const std::string name = std::get<std::string>(key);
    before.emplace_back(name, staged[name].as_tensor().clone());
  }
  for (const auto& [key, value] : d->entries()) Tensor(value.as_tensor()).fill_(-7.0);
  for (const auto& [name, copy] : before) {
    ctx.check(Tensor::equal(staged[name].as_tensor(), copy), name, "independence",
              fmt::format("writing into the source after the stage changed the staged tensor: it was staged as the "
                          "source's own memory ({})",
                          memory_kind_name(d->at(name).as_tensor().storage().memory_kind())));
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(ready_sources) {
  static constexpr Source kCpuSourcesOnly[] = {Source::cpu};
  add_matrix(registry, "sources_already_pinned_or_shared",
             "CPU sources already in page-locked, shared, or page-locked shared memory are copied like any other: "
             "the staged dict holds none of their memory and keeps its values when they change",
             "strict (spec B.1.3)", Profile::strict, kCpuSourcesOnly, kFourConfigs, ready_sources_case);
}

}  // namespace stagekit::conformance
