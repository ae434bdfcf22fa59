// Shared building blocks of the stager cases: case names and the source/config matrix (the registry
// formats every ID, stagekit/conformance/case_id.h), the upstream inputs (spec A.1), small assertion
// helpers and a forked-child runner for cases that change process limits.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "stagekit/conformance/case.h"
#include "stagekit/testing/run_in_child.h"
#include "verify/verify.h"

namespace stagekit::conformance {

enum class Source { cpu, cuda };
inline constexpr std::array<Source, 2> kBothSources = {Source::cpu, Source::cuda};
[[nodiscard]] std::string_view source_name(Source s) noexcept;
[[nodiscard]] Device source_device(Source s) noexcept;

struct PinShare {
  bool pin = false;
  bool share = false;
};
// PyTorch's four configurations, in its order: (False, False), (True, False), (False, True), (True, True).
inline constexpr std::array<PinShare, 4> kFourConfigs = {PinShare{false, false}, PinShare{true, false},
                                                         PinShare{false, true}, PinShare{true, true}};
// The two that page-lock.
inline constexpr std::array<PinShare, 2> kPinnedConfigs = {PinShare{true, false}, PinShare{true, true}};
// The three whose memory a probe can see (page-locked, shared or both): pageable buffers going back to
// the heap cannot be seen from outside, so a release check there needs the implementation's own count.
inline constexpr std::array<PinShare, 3> kProbedConfigs = {PinShare{true, false}, PinShare{false, true},
                                                           PinShare{true, true}};
[[nodiscard]] std::string config_name(PinShare c);  // "pin1_share0"
[[nodiscard]] StagerConfig stager_config(PinShare c, std::size_t pin_memory_min_bytes = 5);
[[nodiscard]] MemoryExpectation memory_expectation(PinShare c, std::size_t pin_memory_min_bytes = 5);
[[nodiscard]] Requirements requirements_for(Source s, PinShare c);

// How long an operation with a timeout may take to give up and raise: the timeout, a quarter of it
// and half a second for the unwinding (a stager that waits for its timeout twice over, a retry or a
// timeout per message, exceeds it).
[[nodiscard]] constexpr std::chrono::milliseconds give_up_limit(std::chrono::milliseconds timeout) noexcept {
  return timeout + timeout / 4 + std::chrono::milliseconds(500);
}

// The feature and variant segments of a family of cases (`dtype` + `bfloat16`); the registration
// helpers add the area, source, config and rank count.
struct CaseName {
  CaseName(const char* feature_name) : feature(feature_name) {}  // a family without variants
  CaseName(std::string feature_name, std::vector<std::string> variant_segments = {})
      : feature(std::move(feature_name)), variants(std::move(variant_segments)) {}
  std::string feature;
  std::vector<std::string> variants;
};

// `stager.<feature>[.<variant>...].<source>.<config>`
[[nodiscard]] CaseId stager_case_id(const CaseName& name, Source s, PinShare c);

// Registers one stager case of source `s` and configuration `c`, with `description` as given.
void add_stager_case(CaseRegistry& registry, const CaseName& name, Source s, PinShare c, std::string description,
                     std::string_view source, Profile profile, Requirements requirements, CaseBody body);

// Registers `stager.<feature>[.<variant>...].<source>.<config>` for every source in `sources` and
// config in `configs`.
using MatrixBody = std::function<void(CaseContext&, Source, PinShare)>;
void add_matrix(CaseRegistry& registry, const CaseName& name, std::string_view description, std::string_view source,
                Profile profile, std::span<const Source> sources, std::span<const PinShare> configs,
                const MatrixBody& body, Requirements extra = {});

// ---- upstream inputs (spec A.1.1) ----------------------------------------------------------------------
struct ViewsInput {
  Value state_dict;
  Tensor tensor1, tensor2, tensor3;
};
// {"tensor1": 4x4, "tensor2": tensor1.view(16), "recursive": {"tensor3": 4x4,
//  "type": TestStruct(tensor1 = tensor3.narrow(0, 0, 2))}}
[[nodiscard]] ViewsInput make_views_input(Device device, std::uint64_t seed);

// ---- helpers -----------------------------------------------------------------------------------------
struct DistinctStorages {
  std::size_t count = 0;
  std::uint64_t bytes = 0;
};
// Distinct storages (by identity) of all tensors reachable from `v`.
[[nodiscard]] DistinctStorages distinct_storages(const Value& v);
// True when every element of `t` equals `value` (after conversion to t's dtype).
[[nodiscard]] bool all_equal(const Tensor& t, double value);
// A digest (XXH3-64) of the bytes of every distinct storage reachable from a state dict, each with
// the path of the first tensor on it: taken before a stage and compared after, it catches a stager
// that writes into its sources (normalising their floats in place, using them as scratch) and stages
// what it wrote, which a comparison of the staged dict with the sources afterwards cannot see.
struct StorageDigest {
  std::string path;
  Storage storage;
  std::uint64_t digest = 0;
};
[[nodiscard]] std::vector<StorageDigest> storage_digests(const Value& v);
// Fails the case ("stage (<what>)", property "sources unchanged") for every storage whose bytes
// differ from its digest in `before`, naming the path.
void require_unchanged(CaseContext& ctx, const std::vector<StorageDigest>& before, std::string_view what);
// Stages with `stager` and requires that it returns (no exception), leaves the caller's tree as it
// was (source_tree.h: the same nodes in the same places, property "sources unchanged") and the bytes of every
// source storage as they were.
[[nodiscard]] Value stage_or_fail(CaseContext& ctx, StagerUnderTest& stager, const Value& sd, std::string_view what);
// The implementation's DefaultStager with `options`; a construction error or no stager ends the case
// (property "make_default_stager").
[[nodiscard]] std::unique_ptr<AsyncStagerUnderTest> make_default_stager_or_fail(CaseContext& ctx,
                                                                                const StagingOptions& options);

using probe::ChildOutcome;
using probe::run_in_child;

}  // namespace stagekit::conformance
