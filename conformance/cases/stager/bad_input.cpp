// Bad input: an error naming the state-dict path, nothing half-staged, nothing leaked, and the stager
// usable afterwards. Every bad dict first holds a valid 1 MiB tensor so that buffers exist when the
// error is found.
#include <fmt/format.h>

#include "../../harness/fixtures.h"
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

void bad_input_case(CaseContext& ctx, Source src, PinShare cfg, const BadInput& bad) {
  const Device dev = source_device(src);
  const Value good_tensor = Tensor::random({256, 1024}, DType::float32, 3, dev);
  auto layer = std::make_shared<Dict>();
  layer->set("weight", good_tensor);
  layer->set(leaf_key(bad), bad.make_bad_leaf(dev));
  const Value sd = Value::dict({{"good", good_tensor}, {"layer0", Value(layer)}});

  auto stager = ctx.make_stager(stager_config(cfg));
  const auto stats_before = ctx.capabilities().cache_stats ? stager->cache_stats() : std::nullopt;
  const std::uint64_t locked_before = probe::locked_bytes();
  const std::size_t shared_before = probe::shared_object_mappings();
  const std::vector<std::string> fds_before = probe::open_file_descriptor_targets();

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

  if (stats_before) {
    const auto stats = stager->cache_stats();
    ctx.check(stats && stats->cached_storages == stats_before->cached_storages &&
                  stats->cached_bytes == stats_before->cached_bytes,
              "<stager>", "nothing half-staged", "the failed stage left entries in the cache");
  }
  ctx.check(probe::locked_bytes() <= locked_before, "<process>", "nothing leaked",
            fmt::format("{} bytes locked after the failed stage, {} before", probe::locked_bytes(), locked_before));
  ctx.check(probe::shared_object_mappings() <= shared_before, "<process>", "nothing leaked",
            "the failed stage left shared-memory mappings behind");
  const std::vector<std::string> fds_after = probe::open_file_descriptor_targets();
  ctx.check(
      fds_after.size() <= fds_before.size(), "<process>", "nothing leaked",
      fmt::format("the failed stage left file descriptors open: {}", probe::new_descriptors(fds_before, fds_after)));

  const Value good = Value::dict({{"good", good_tensor}});
  const Value staged = stage_or_fail(ctx, *stager, good, "after the rejected input");
  ctx.add_failures(verify_staged(good, staged, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(bad_input) {
  static constexpr PinShare kObservable[] = {PinShare{false, false}, PinShare{true, true}};
  for (const BadInput& bad : bad_inputs()) {
    add_matrix(
        registry, CaseName("bad_input", {bad.name}),
        fmt::format("Staging {} fails naming the path, stages nothing, leaks nothing, and the stager stays usable",
                    bad.description),
        "strict", Profile::strict, kBothSources, kObservable,
        [&bad](CaseContext& ctx, Source s, PinShare c) { bad_input_case(ctx, s, c, bad); });
  }
}

}  // namespace stagekit::conformance
