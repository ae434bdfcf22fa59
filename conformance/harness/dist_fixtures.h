// Building blocks of the multi-rank cases (DTensor staging and the state-dict utilities): the
// registration of `<area>.<feature>[.<variant>].<source>.<config>.ws<N>` over sources and world
// sizes, the seeded inputs of spec A.2/A.4, and helpers that name the rank in every failure.
#pragma once

#include <array>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "fixtures.h"
#include "stagekit/core/dtensor.h"
#include "stagekit/core/sharded_tensor.h"

namespace stagekit::conformance {

inline constexpr std::array<int, 2> kWorlds2And4 = {2, 4};
inline constexpr std::array<int, 1> kWorld4 = {4};

using WorldBody = std::function<void(CaseContext&, Source, int world_size)>;
// Registers `<area>.<feature>[.<variant>...].<source>.<config>.ws<N>` for each source and world
// size (no `.ws<N>` for a world size of 1: a single-process case). `<config>` is the stager or
// utility configuration the case uses, or `default` when it has none.
void add_world_cases(CaseRegistry& registry, std::string_view area, const CaseName& name, std::string_view description,
                     std::string_view source, Profile profile, std::span<const Source> sources,
                     std::span<const int> world_sizes, const WorldBody& body, Requirements extra,
                     std::optional<PinShare> config = std::nullopt);

// The requirements of a utilities case: state_dict_utilities and dtensor.
[[nodiscard]] Requirements utilities_requirements();
// "rank 2: dtensor" — a failure path that names the rank.
[[nodiscard]] std::string at_rank(int rank, std::string_view path);
// A deterministic random float32 tensor that every rank can rebuild for any rank (seeded by rank).
[[nodiscard]] Tensor rank_tensor(IntList sizes, int rank, Device device, std::uint64_t salt = 0);
// A 1-D mesh over the world on `device`'s type.
[[nodiscard]] DeviceMesh world_mesh(int world_size, Device device);
// Exact equality, with a failure naming the rank, the path and both descriptions.
bool check_equal(CaseContext& ctx, int rank, std::string_view path, const Tensor& actual, const Tensor& expected);
// The whole strict contract of a staged state dict on one rank (verify_staged(): structure, the
// DTensor specs and ShardedTensor metadata, every local tensor's device, layout, bytes, sharing and
// independence from its source, and the memory kinds `config` asks for, probed), each failure's
// path naming the rank.
void check_staged_on_rank(CaseContext& ctx, int rank, const Value& source, const Value& staged, PinShare config);

}  // namespace stagekit::conformance
