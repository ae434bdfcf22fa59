// The state dicts the stage benchmarks stage, built once per (layout, device) and reused:
//   large        64 tensors x 16 MiB float32 (1 GiB)
//   small        100,000 tensors x 1 KiB
//   transformer  24 layers (q/k/v/o, MLP up/down, two layer norms; hidden 512, MLP 2048) plus an
//                embedding, with Adam exp_avg/exp_avg_sq and a 0-dim step per parameter (~0.95 GiB)
//   views        32 base tensors of 8 MiB, each followed by a view of it (a transpose or a strided slice)
// Smoke mode builds the same shapes scaled down so that the harness runs in seconds.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "stagekit/core/value.h"

namespace stagekit::perf {

enum class Layout { large, small, transformer, views };
inline constexpr Layout kLayouts[] = {Layout::large, Layout::small, Layout::transformer, Layout::views};
[[nodiscard]] const char* layout_name(Layout l) noexcept;

struct StateDictFixture {
  Value state_dict;
  std::vector<Storage> storages;  // the distinct source storages
  std::size_t tensors = 0;        // tensor leaves
  std::size_t bytes = 0;          // bytes of the distinct storages: what a stage must copy
};

// Built on first use, then cached for the rest of the run.
[[nodiscard]] const StateDictFixture& fixture(Layout layout, Device device);

}  // namespace stagekit::perf
