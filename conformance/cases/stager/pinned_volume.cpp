// Every buffer pin_memory asks for is page-locked, however much is pinned already: a stager that
// pins from a pool of bounded size and quietly stages past it to pageable memory passes every case
// whose state dict fits the pool. Five storages of 13 MiB + 3 bytes (65 MiB in all, more than a
// pool of 64 MiB holds), each probed; a stager that cannot pin them must fail the stage with
// resource_exhausted. The five source storages are distinct storages over the same bytes (so a run
// pays for 13 MiB of sources, not 65), and the values are checked, not every byte: the exact-copy
// properties are the other cases' business.
#include <fmt/format.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr int kPinnedStorages = 5;
constexpr std::int64_t kPinnedStorageBytes = (std::int64_t{13} << 20) + 3;

void keep_pinned_volume_arena(void* /*data*/, void* /*context*/) noexcept {}

void pinned_volume_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor arena = Tensor::full({kPinnedStorageBytes}, 11.0, DType::uint8, dev);  // outlives every view
  auto dict = std::make_shared<Dict>();
  for (int i = 0; i < kPinnedStorages; ++i) {  // a storage of its own over the arena's bytes
    Storage storage =
        Storage::from_data_ptr(DataPtr(arena.storage().data(), arena.storage().nbytes(), dev,
                                       arena.storage().memory_kind(), nullptr, &keep_pinned_volume_arena));
    dict->set(fmt::format("shard{}", i),
              Tensor::from_storage(std::move(storage), DType::uint8, {kPinnedStorageBytes}, {1}, 0));
  }
  const Value sd(dict);
  auto stager = ctx.make_stager(stager_config(cfg));
  Value staged;
  try {  // not stage_or_fail(): digests of every source byte, twice, are other cases' business
    staged = stager->stage(sd);
  } catch (const Error& e) {
    ctx.require(false, e.path().empty() ? "<stager>" : e.path(), "stage (65 MiB to pin)",
                fmt::format("raised {}: {}", error_code_name(e.code()), e.detail()));
  }
  const Tensor expected = arena.to(Device::cpu());
  std::vector<std::pair<std::uintptr_t, std::string>> starts;  // staged storages, by where they begin
  for (int i = 0; i < kPinnedStorages; ++i) {
    const std::string key = fmt::format("shard{}", i);
    const Value& got = staged[key];
    const bool copied =
        got.is_tensor() && got.as_tensor().device().is_cpu() && Tensor::equal(got.as_tensor(), expected);
    ctx.check(copied, key, "values", "the staged tensor is not a CPU copy of the source's values");
    if (copied) starts.emplace_back(reinterpret_cast<std::uintptr_t>(got.as_tensor().storage().data()), key);
  }
  // Five distinct source storages are five staged storages (spec B.1.3: storage identity, not
  // addresses): 65 MiB staged, never one buffer for all five because their bytes are the same memory.
  std::sort(starts.begin(), starts.end());
  for (std::size_t i = 1; i < starts.size(); ++i) {
    ctx.check(starts[i].first >= starts[i - 1].first + static_cast<std::uintptr_t>(kPinnedStorageBytes),
              starts[i].second, "a storage of its own",
              fmt::format("the staged storage overlaps the one staged for {}: five distinct source storages must be "
                          "staged into five buffers of {} bytes, whatever memory the sources share",
                          starts[i - 1].second, kPinnedStorageBytes));
  }
  ctx.add_failures(verify_memory_kinds(staged, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(pinned_volume) {
  add_matrix(registry, "pinned_past_a_pool",
             "Five storages of 13 MiB + 3 bytes (65 MiB, more than a pinned pool of 64 MiB holds) are each staged "
             "into a buffer of its own (five distinct storages over the same bytes) with their values, and "
             "page-locked (probed), shared where asked",
             "strict (spec B.1.3)", Profile::strict, kBothSources, kPinnedConfigs, pinned_volume_case);
}

}  // namespace stagekit::conformance
