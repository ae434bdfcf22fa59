#include "fixtures.h"

#include "source_tree.h"

#include <xxhash.h>

#include <unordered_set>

#include <fmt/format.h>

namespace stagekit::conformance {

std::string_view source_name(Source s) noexcept { return s == Source::cpu ? "cpu" : "cuda"; }
Device source_device(Source s) noexcept { return s == Source::cpu ? Device::cpu() : Device::cuda(0); }

std::string config_name(PinShare c) { return config_name(c.pin, c.share); }

StagerConfig stager_config(PinShare c, std::size_t pin_memory_min_bytes) {
  return {c.pin, c.share, pin_memory_min_bytes};
}

MemoryExpectation memory_expectation(PinShare c, std::size_t pin_memory_min_bytes) {
  return {c.pin, c.share, pin_memory_min_bytes, true};
}

Requirements requirements_for(Source s, PinShare c) {
  Requirements r;
  r.cuda_device = s == Source::cuda;
  r.pin_memory = c.pin;
  r.share_memory = c.share;
  return r;
}

CaseId stager_case_id(const CaseName& name, Source s, PinShare c) {
  CaseId id;
  id.area = "stager";
  id.feature = name.feature;
  id.variants = name.variants;
  id.source = std::string(source_name(s));
  id.config = config_name(c);
  return id;
}

void add_stager_case(CaseRegistry& registry, const CaseName& name, Source s, PinShare c, std::string description,
                     std::string_view source, Profile profile, Requirements requirements, CaseBody body) {
  registry.add(stager_case_id(name, s, c), std::move(description), std::string(source), profile, requirements,
               std::move(body));
}

void add_matrix(CaseRegistry& registry, const CaseName& name, std::string_view description, std::string_view source,
                Profile profile, std::span<const Source> sources, std::span<const PinShare> configs,
                const MatrixBody& body, Requirements extra) {
  for (Source s : sources) {
    for (PinShare c : configs) {
      Requirements r = requirements_for(s, c);
      r.non_blocking = r.non_blocking || extra.non_blocking;
      r.cache_stats = r.cache_stats || extra.cache_stats;
      r.no_cuda_device = r.no_cuda_device || extra.no_cuda_device;
      r.pin_memory = r.pin_memory || extra.pin_memory;
      r.share_memory = r.share_memory || extra.share_memory;
      r.dtensor = r.dtensor || extra.dtensor;
      r.sharded_tensor = r.sharded_tensor || extra.sharded_tensor;
      r.state_dict_utilities = r.state_dict_utilities || extra.state_dict_utilities;
      r.async_staging = r.async_staging || extra.async_staging;
      add_stager_case(
          registry, name, s, c,
          fmt::format("{} ({} sources, pin_memory={}, share_memory={})", description, source_name(s), c.pin, c.share),
          source, profile, r, [body, s, c](CaseContext& ctx) { body(ctx, s, c); });
    }
  }
}

ViewsInput make_views_input(Device device, std::uint64_t seed) {
  ViewsInput in;
  in.tensor1 = Tensor::random({4, 4}, DType::float32, seed, device);
  in.tensor2 = in.tensor1.view({16});
  in.tensor3 = Tensor::random({4, 4}, DType::float32, seed + 1, device);
  Value test_struct = Value::object("TestStruct", {{"tensor1", in.tensor3.narrow(0, 0, 2)}});
  in.state_dict = Value::dict({{"tensor1", in.tensor1},
                               {"tensor2", in.tensor2},
                               {"recursive", Value::dict({{"tensor3", in.tensor3}, {"type", test_struct}})}});
  return in;
}

DistinctStorages distinct_storages(const Value& v) {
  DistinctStorages out;
  std::unordered_set<const void*> seen;
  for (const TensorLeaf& leaf : tensor_leaves(v)) {
    const Storage& s = leaf.tensor.storage();
    if (!s.defined() || !seen.insert(s.identity()).second) continue;
    ++out.count;
    out.bytes += s.nbytes();
  }
  return out;
}

bool all_equal(const Tensor& t, double value) {
  Tensor expected = Tensor::full(IntList(t.sizes().begin(), t.sizes().end()), value, t.dtype());
  return Tensor::equal(t, expected);
}

namespace {

// Host storages in place (no allocation: some cases cap the address space); device storages through
// a host copy.
std::uint64_t digest_of(const Storage& s) {
  if (s.nbytes() == 0) return XXH3_64bits(nullptr, 0);
  if (s.device().is_cpu()) return XXH3_64bits(s.data(), s.nbytes());
  Storage host = Storage::allocate(s.nbytes());
  copy_bytes(host, 0, s, 0, s.nbytes());
  return XXH3_64bits(host.data(), host.nbytes());
}

}  // namespace

std::vector<StorageDigest> storage_digests(const Value& v) {
  std::vector<StorageDigest> out;
  std::unordered_set<const void*> seen;
  for (const TensorLeaf& leaf : tensor_leaves(v)) {
    const Storage& s = leaf.tensor.storage();
    if (!s.defined() || s.data() == nullptr || !seen.insert(s.identity()).second) continue;
    out.push_back({leaf.path, s, digest_of(s)});
  }
  return out;
}

void require_unchanged(CaseContext& ctx, const std::vector<StorageDigest>& before, std::string_view what) {
  for (const StorageDigest& d : before) {
    const std::uint64_t now = digest_of(d.storage);
    ctx.require(now == d.digest, d.path, fmt::format("stage ({}): sources unchanged", what),
                fmt::format("stage() wrote into the source storage under this path ({} bytes; XXH3 {:016x} before, "
                            "{:016x} after)",
                            d.storage.nbytes(), d.digest, now));
  }
}

Value stage_or_fail(CaseContext& ctx, StagerUnderTest& stager, const Value& sd, std::string_view what) {
  try {
    const std::vector<StorageDigest> before = storage_digests(sd);
    const std::vector<TreeNode> tree = source_tree(sd);
    Value staged = stager.stage(sd);
    require_unchanged(ctx, before, what);
    if (const auto change = first_tree_change(sd, tree)) {
      ctx.require(false, change->first, fmt::format("stage ({}): sources unchanged", what),
                  fmt::format("stage() changed the caller's state dict (a stager must leave its input as it was): {}",
                              change->second));
    }
    return staged;
  } catch (const Error& e) {
    ctx.require(false, e.path().empty() ? "<stager>" : e.path(), fmt::format("stage ({})", what),
                fmt::format("raised {}: {}", error_code_name(e.code()), e.detail()));
  }
  return {};
}

std::unique_ptr<AsyncStagerUnderTest> make_default_stager_or_fail(CaseContext& ctx, const StagingOptions& options) {
  std::unique_ptr<AsyncStagerUnderTest> stager;
  try {
    stager = ctx.impl().make_default_stager(options);
  } catch (const std::exception& e) {
    ctx.require(false, "<implementation>", "make_default_stager", e.what());
  }
  ctx.require(stager != nullptr, "<implementation>", "make_default_stager", "returned no stager");
  return stager;
}

}  // namespace stagekit::conformance
