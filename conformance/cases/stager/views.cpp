// A.1.1 test_views: views share one staged buffer per source storage.
#include <fmt/format.h>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

void views_case(CaseContext& ctx, Source src, PinShare cfg) {
  const ViewsInput in = make_views_input(source_device(src), 1);
  ctx.require(in.tensor1.storage().is_alias_of(in.tensor2.storage()), "tensor2", "input",
              "the test input is wrong: tensor2 must be a view of tensor1");
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value staged = stage_or_fail(ctx, *stager, in.state_dict, "views");

  const DistinctStorages d = distinct_storages(staged);
  ctx.check(d.count == 2, "<staged>", "one buffer per source storage",
            fmt::format("{} distinct staged storages, expected 2", d.count));
  ctx.check(d.bytes == 128, "<staged>", "one buffer per source storage",
            fmt::format("staged storages hold {} bytes, expected 16*4 + 16*4 = 128", d.bytes));
  if (ctx.capabilities().cache_stats) {
    const auto stats = stager->cache_stats();
    ctx.check(stats && stats->cached_storages == 2 && stats->cached_bytes == 128, "<stager>", "cache entries",
              stats ? fmt::format("cache reports {} storages / {} bytes, expected 2 / 128", stats->cached_storages,
                                  stats->cached_bytes)
                    : "cache_stats() returned nothing although declared");
  }
  ctx.add_failures(compare_like_upstream(in.state_dict, staged, source_device(src)));

  const Tensor t1 = staged["tensor1"].as_tensor();
  const Tensor t2 = staged["tensor2"].as_tensor();
  ctx.check(t1.device().is_cpu() && t2.device().is_cpu(), "tensor1", "device", "staged tensors must be on cpu");
  ctx.check(t1.storage().data() == t2.storage().data(), "tensor2", "storage sharing",
            "staged tensor1 and tensor2 do not report the same storage base address");
  const Tensor t3 = staged["recursive"]["tensor3"].as_tensor();
  const Tensor tt = staged["recursive"]["type"]["tensor1"].as_tensor();
  ctx.check(t3.device().is_cpu() && tt.device().is_cpu(), "recursive.tensor3", "device",
            "staged tensors must be on cpu");
  ctx.check(t3.storage().data() == tt.storage().data(), "recursive.type.tensor1", "storage sharing",
            "staged recursive.tensor3 and recursive.type.tensor1 do not report the same storage base address");
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(views) {
  add_matrix(registry, "views",
             "Views of one storage stage into one CPU buffer: 2 cached storages, 128 bytes, sharing kept",
             "TestStateDictStager.test_views", Profile::upstream, kBothSources, kFourConfigs, views_case);
}

}  // namespace stagekit::conformance
