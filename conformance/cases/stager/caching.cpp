// A.1.2 test_caching: a second stage of the same sources copies into the same buffers.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

std::size_t cache_entries(CaseContext& ctx, StagerUnderTest& stager, const Value& staged) {
  if (ctx.capabilities().cache_stats) {
    const auto stats = stager.cache_stats();
    ctx.require(stats.has_value(), "<stager>", "cache entries", "cache_stats() returned nothing although declared");
    return stats->cached_storages;
  }
  return distinct_storages(staged).count;
}

void caching_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  ViewsInput in = make_views_input(dev, 2);
  auto stager = ctx.make_stager(stager_config(cfg));

  const Value staged1 = stage_or_fail(ctx, *stager, in.state_dict, "first");
  const std::size_t n1 = cache_entries(ctx, *stager, staged1);
  ctx.add_failures(compare_like_upstream(in.state_dict, staged1, dev));

  in.tensor1.fill_(0.0);
  in.tensor3.fill_(0.0);
  const Value staged2 = stage_or_fail(ctx, *stager, in.state_dict, "second");
  const std::size_t n2 = cache_entries(ctx, *stager, staged2);
  ctx.add_failures(compare_like_upstream(in.state_dict, staged2, dev));
  ctx.check(n1 == n2, "<stager>", "cache entries",
            fmt::format("{} entries after the first stage, {} after the second", n1, n2));

  for (const char* key : {"tensor1", "tensor2"}) {
    ctx.check(staged1[key].as_tensor().storage().data() == staged2[key].as_tensor().storage().data(), key,
              "buffer reuse", "the second stage did not reuse the first stage's buffer");
  }
  ctx.check(staged1["recursive"]["tensor3"].as_tensor().storage().data() ==
                staged2["recursive"]["tensor3"].as_tensor().storage().data(),
            "recursive.tensor3", "buffer reuse", "the second stage did not reuse the first stage's buffer");

  in.tensor1.fill_(42.0);
  const Value staged3 = stage_or_fail(ctx, *stager, in.state_dict, "third");
  ctx.check(all_equal(staged3["tensor1"].as_tensor(), 42.0), "tensor1", "values", "not every element is 42.0");
  ctx.check(all_equal(staged3["tensor2"].as_tensor(), 42.0), "tensor2", "values", "not every element is 42.0");
}

// A later stage may see the same storage through other views (a parameter re-viewed, a buffer
// reinterpreted): every stage rebuilds each view from its source, whatever an earlier stage of the
// same storage returned under the same key.
void views_change_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Tensor base = Tensor::random({8, 8}, DType::float32, 91, dev);
  const Value first = Value::dict({{"w", base}, {"part", base.select(0, 2)}});
  const Value staged_first = stage_or_fail(ctx, *stager, first, "first views");
  ctx.add_failures(verify_staged(first, staged_first, memory_expectation(cfg)));
  const Value second = Value::dict({{"w", base.transpose(0, 1)}, {"part", base.slice(1, 1, 8, 2)}});
  const Value staged_second = stage_or_fail(ctx, *stager, second, "changed views");
  ctx.add_failures(verify_staged(second, staged_second, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(caching) {
  add_matrix(registry, "caching", "Re-staging the same sources reuses the cached buffers and sees the new values",
             "TestStateDictStager.test_caching", Profile::upstream, kBothSources, kFourConfigs, caching_case);
  add_matrix(registry, "views_change_between_stages",
             "A second stage of the same storage under the same keys but through other views (transposed, a "
             "strided slice) rebuilds every view exactly",
             "strict", Profile::strict, kBothSources, kFourConfigs, views_change_case);
}

}  // namespace stagekit::conformance
