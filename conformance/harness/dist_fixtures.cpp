#include "dist_fixtures.h"

#include <fmt/format.h>

namespace stagekit::conformance {

void add_world_cases(CaseRegistry& registry, std::string_view area, const CaseName& name, std::string_view description,
                     std::string_view source, Profile profile, std::span<const Source> sources,
                     std::span<const int> world_sizes, const WorldBody& body, Requirements extra,
                     std::optional<PinShare> config) {
  for (Source s : sources) {
    for (int ws : world_sizes) {
      Requirements r = extra;
      r.cuda_device = r.cuda_device || s == Source::cuda;
      // World size 1 is a single-process case: no rank segment, and never run by run_ranks().
      r.world_size = ws > 1 ? ws : 0;
      CaseId id;
      id.area = std::string(area);
      id.feature = name.feature;
      id.variants = name.variants;
      id.source = std::string(source_name(s));
      if (config) id.config = config_name(*config);
      id.world_size = r.world_size;
      registry.add(id,
                   ws > 1 ? fmt::format("{} ({} sources, {} ranks)", description, source_name(s), ws)
                          : fmt::format("{} ({} sources)", description, source_name(s)),
                   std::string(source), profile, r, [body, s, ws](CaseContext& ctx) { body(ctx, s, ws); });
    }
  }
}

Requirements utilities_requirements() {
  Requirements r;
  r.state_dict_utilities = true;
  r.dtensor = true;
  return r;
}

std::string at_rank(int rank, std::string_view path) { return fmt::format("rank {}: {}", rank, path); }

Tensor rank_tensor(IntList sizes, int rank, Device device, std::uint64_t salt) {
  return Tensor::random(std::move(sizes), DType::float32, 7919 * static_cast<std::uint64_t>(rank + 1) + salt, device);
}

DeviceMesh world_mesh(int world_size, Device device) { return DeviceMesh::one_d(device.type, world_size); }

bool check_equal(CaseContext& ctx, int rank, std::string_view path, const Tensor& actual, const Tensor& expected) {
  const bool same = actual.defined() && Tensor::equal(actual, expected);
  return ctx.check(same, at_rank(rank, path), "values", same ? std::string() : describe_difference(actual, expected));
}

void check_staged_on_rank(CaseContext& ctx, int rank, const Value& source, const Value& staged, PinShare config) {
  std::vector<Failure> failures = verify_staged(source, staged, memory_expectation(config));
  for (Failure& f : failures) f.path = at_rank(rank, f.path);
  ctx.add_failures(failures);
}

}  // namespace stagekit::conformance
