// Bad input: an error naming the state-dict path, nothing leaked, the stager usable afterwards, and
// (with cache_stats) nothing half-staged. Every bad dict first holds a valid 1 MiB tensor so that buffers exist when
// the error is found.
#include <fmt/format.h>

#include "../../harness/fixtures.h"
#include "stagekit/testing/leak_check.h"
#include "stagekit/testing/memory_probe.h"

namespace stagekit::conformance {
namespace {

struct BadInput {
  const char* name;
  const char* description;
  const char* path_part;  // the leaf's key: its whole path, layer0.<key>, must appear in the error
  std::vector<ErrorCode> accepted;
  Value (*make_bad_leaf)(Device dev);
};

const std::vector<BadInput>& bad_inputs() {
  static const std::vector<BadInput> inputs = {
      {"out_of_bounds_view",
       "a view whose storage was shrunk below it",
       "shrunk_view",
       {ErrorCode::invalid_argument},
       [](Device dev) {
         Tensor t = Tensor::random({4, 4}, DType::float32, 1, dev);
         Storage s = t.storage();
         s.resize(16);  // the 64-byte view no longer fits
         return Value(t);
       }},
      {"null_storage_with_elements",
       "a tensor with 4 elements and no storage",
       "no_storage",
       {ErrorCode::invalid_argument},
       [](Device) { return Value(Tensor::unchecked(Storage(), DType::float32, {4}, {1}, 0)); }},
      {"malformed_layout",
       "a tensor whose sizes and strides differ in length",
       "bad_layout",
       {ErrorCode::invalid_argument},
       [](Device dev) {
         const Tensor t = Tensor::random({8}, DType::float32, 2, dev);
         return Value(Tensor::unchecked(t.storage(), DType::float32, {2, 4}, {1}, 0));
       }},
      {"opaque_leaf",
       "a leaf of a type that cannot be copied (a lock)",
       "lock",
       {ErrorCode::unsupported, ErrorCode::invalid_argument},
       [](Device) { return Value::opaque("threading.Lock"); }},
  };
  return inputs;
}

std::string leaf_key(const BadInput& b) { return b.path_part; }

Value bad_dict(const BadInput& bad, const Value& good_tensor, Device dev) {
  auto layer = std::make_shared<Dict>();
  layer->set("weight", good_tensor);
  layer->set(leaf_key(bad), bad.make_bad_leaf(dev));
  return Value::dict({{"good", good_tensor}, {"layer0", Value(layer)}});
}

void bad_input_case(CaseContext& ctx, Source src, PinShare cfg, const BadInput& bad) {
  const Device dev = source_device(src);
  const Value good_tensor = Tensor::random({256, 1024}, DType::float32, 3, dev);
  const Value sd = bad_dict(bad, good_tensor, dev);

  auto stager = ctx.make_stager(stager_config(cfg));
  const probe::ProcessResources before = probe::ProcessResources::snapshot();

  bool raised = false;
  try {
    (void)stager->stage(sd);
  } catch (const Error& e) {
    raised = true;
    const bool accepted = std::find(bad.accepted.begin(), bad.accepted.end(), e.code()) != bad.accepted.end();
    ctx.check(accepted, "<error>", "error kind", fmt::format("got {}: {}", error_code_name(e.code()), e.what()));
    // The whole path, not only the leaf's key.
    const std::string path = fmt::format("layer0.{}", bad.path_part);
    ctx.check(std::string(e.what()).find(path) != std::string::npos, "<error>", "error names the path",
              fmt::format("the message does not name {}: {}", path, e.what()));
  }
  ctx.require(raised, fmt::format("layer0.{}", bad.path_part), "bad input rejected",
              fmt::format("staging {} did not raise", bad.description));

  for (const probe::Leak& leak : probe::leaks_since(before, probe::ProcessResources::snapshot())) {
    ctx.check(false, "<process>", "nothing leaked",
              fmt::format("the failed stage left {} behind: {}", leak.what, leak.detail));
  }

  const Value good = Value::dict({{"good", good_tensor}});
  const Value staged = stage_or_fail(ctx, *stager, good, "after the rejected input");
  ctx.add_failures(verify_staged(good, staged, memory_expectation(cfg)));

  // The cache outlives a failed stage: entries go only with their source or at close() (spec
  // B.1.3), so a storage staged before a failed stage, even one the failed stage used, is staged
  // again into the same buffer, which the result staged before shows. Judged where the stager reused
  // that buffer before the failure (reuse itself is stager.caching's business).
  // Both results are alive, so one address is one buffer (a route may wrap its results anew each stage).
  const auto same_buffer = [](const Value& a, const Value& b) {
    return a["good"].as_tensor().storage().data() == b["good"].as_tensor().storage().data();
  };
  Tensor(good_tensor.as_tensor()).fill_(5.0);
  const Value again = stage_or_fail(ctx, *stager, good, "again, before a second rejected input");
  const bool reused = same_buffer(again, staged) && all_equal(staged["good"].as_tensor(), 5.0);
  try {
    (void)stager->stage(sd);
  } catch (const std::exception&) {  // rejected again, as judged above
  }
  Tensor(good_tensor.as_tensor()).fill_(7.0);
  const Value after = stage_or_fail(ctx, *stager, good, "after the second rejected input");
  ctx.add_failures(verify_staged(good, after, memory_expectation(cfg)));
  if (reused) {
    ctx.check(same_buffer(after, staged) && all_equal(staged["good"].as_tensor(), 7.0), "good",
              "cache kept after a failed stage",
              "a storage staged before a failed stage was staged again into a new buffer, and the result staged "
              "before no longer aliases the cache: the failed stage dropped cache entries it had not made");
  }
}

// Nothing half-staged: the cache holds what it held before the failed stage. For pageable buffers only
// the implementation's own count shows it, so this case needs cache_stats.
void stages_nothing_case(CaseContext& ctx, Source src, PinShare cfg, const BadInput& bad) {
  const Device dev = source_device(src);
  const Value good_tensor = Tensor::random({256, 1024}, DType::float32, 3, dev);
  auto stager = ctx.make_stager(stager_config(cfg));
  const auto before = stager->cache_stats();
  ctx.require(before.has_value(), "<stager>", "cache entries", "cache_stats() returned nothing although declared");
  try {
    (void)stager->stage(bad_dict(bad, good_tensor, dev));
  } catch (const Error&) {  // what is raised is bad_input's business
  }
  const auto after = stager->cache_stats();
  ctx.check(after && after->cached_storages == before->cached_storages && after->cached_bytes == before->cached_bytes,
            "<stager>", "nothing half-staged",
            after ? fmt::format("the failed stage left {} cache entries ({} bytes); {} before", after->cached_storages,
                                after->cached_bytes, before->cached_storages)
                  : "cache_stats() returned nothing although declared");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(bad_input) {
  static constexpr PinShare kObservable[] = {PinShare{false, false}, PinShare{true, true}};
  for (const BadInput& bad : bad_inputs()) {
    add_matrix(
        registry, CaseName("bad_input", {bad.name}),
        fmt::format("Staging {} fails naming the path, leaks no page-locked memory, shared mapping, "
                    "shared-memory object or descriptor, "
                    "and the stager stays usable with its cache (a stager that reuses buffers stages a storage staged "
                    "before a failed stage into the same buffer again)",
                    bad.description),
        "strict", Profile::strict, kBothSources, kObservable,
        [&bad](CaseContext& ctx, Source s, PinShare c) { bad_input_case(ctx, s, c, bad); });
    static constexpr PinShare kPageable[] = {PinShare{false, false}};
    add_matrix(
        registry, CaseName("bad_input_stages_nothing", {bad.name}),
        fmt::format("Staging {} leaves no entry in the cache (counted by cache_stats: an implementation without them "
                    "is not_supported)",
                    bad.description),
        "strict", Profile::strict, kBothSources, kPageable,
        [&bad](CaseContext& ctx, Source s, PinShare c) { stages_nothing_case(ctx, s, c, bad); },
        Requirements{.cache_stats = true});
  }
}

}  // namespace stagekit::conformance
