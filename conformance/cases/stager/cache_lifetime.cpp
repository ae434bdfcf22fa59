// C.1.2, C.1.3, C.1.4, C.1.14: how long cached buffers live, and who sees them.
#include <fmt/format.h>

#include <cstddef>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

constexpr std::int64_t kElements = 64 * 1024;  // 256 KiB of float32

std::optional<std::size_t> cached_count(CaseContext& ctx, StagerUnderTest& stager) {
  if (!ctx.capabilities().cache_stats) return std::nullopt;
  const auto stats = stager.cache_stats();
  ctx.require(stats.has_value(), "<stager>", "cache entries", "cache_stats() returned nothing although declared");
  return stats->cached_storages;
}

// A dead source's entry must go. Only the implementation's own count can show it (a pinned or shared
// pool may keep the memory on purpose), so this case needs cache_stats.
void entry_dies_with_source_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto stager = ctx.make_stager(stager_config(cfg));
  Tensor source = Tensor::random({kElements}, DType::float32, 101, dev);
  Value sd = Value::dict({{"param", source}});
  {
    const Value staged = stage_or_fail(ctx, *stager, sd, "first source");
    ctx.add_failures(verify_staged(sd, staged, memory_expectation(cfg)));
  }
  if (auto n = cached_count(ctx, *stager)) {
    ctx.check(*n == 1, "<stager>", "cache entries", fmt::format("{} cache entries after one stage, expected 1", *n));
  }
  const WeakStorage source_storage = source.storage().weak();
  sd = Value();
  source = Tensor();  // the only source storage dies here
  ctx.check(source_storage.expired(), "param", "source lifetime",
            "the source storage is still alive after the caller dropped every reference to it: the stager keeps "
            "its sources alive (a cache entry must not extend a source's life)");
  if (auto n = cached_count(ctx, *stager)) {
    ctx.check(*n == 0, "<stager>", "cache eviction",
              fmt::format("{} cache entries after the only source storage died, expected 0", *n));
  }
}

void leave_arena_bytes(void* /*data*/, void* /*context*/) noexcept {}

// A storage over `arena`'s bytes that does not own them: when it dies the bytes stay, and the next
// one made the same way has the very address of the dead one, as an allocator that recycles a freed
// block would give it.
Tensor tensor_over_arena(const Storage& arena, std::uint64_t seed) {
  Storage storage = Storage::from_data_ptr(
      DataPtr(arena.data(), arena.nbytes(), arena.device(), arena.memory_kind(), nullptr, &leave_arena_bytes));
  Tensor t = Tensor::from_storage(std::move(storage), DType::float32, {kElements}, {1}, 0);
  t.copy_(Tensor::random({kElements}, DType::float32, seed, arena.device()));
  return t;
}

// After a source dies, a new source at the dead source's very address gets its own buffer, and a
// result staged from the dead source is never overwritten. Buffer identity shows both without
// cache_stats; a stager that knows storages by their address takes the dead one's buffer.
void dead_source_buffer_not_reused_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Storage arena = Storage::allocate(kElements * sizeof(float), dev);
  Tensor first = tensor_over_arena(arena, 101);
  Value sd = Value::dict({{"param", first}});
  const Value staged_first = stage_or_fail(ctx, *stager, sd, "first source");
  const Tensor kept = staged_first["param"].as_tensor();
  const Tensor kept_values = kept.clone();
  const WeakStorage first_storage = first.storage().weak();
  sd = Value();
  first = Tensor();  // the source storage dies here (its bytes stay in the arena)
  ctx.check(first_storage.expired(), "param", "source lifetime",
            "the source storage is still alive after the caller dropped every reference to it: the stager keeps "
            "its sources alive (a cache entry must not extend a source's life)");
  const Tensor second = tensor_over_arena(arena, 202);  // a new storage, at the dead one's address
  const Value sd2 = Value::dict({{"param", second}});
  const Value staged_second = stage_or_fail(ctx, *stager, sd2, "second source");
  ctx.add_failures(verify_staged(sd2, staged_second, memory_expectation(cfg)));
  ctx.check(!staged_second["param"].as_tensor().storage().is_alias_of(kept.storage()), "param", "cache eviction",
            "a new source storage at the dead source's address was staged into the dead source's buffer");
  ctx.check(Tensor::equal(kept, kept_values), "param", "cache eviction",
            "a result staged from a dead source was overwritten when a new source was staged");
}

// Results returned earlier alias the cache: the next stage of the same sources overwrites them.
void earlier_results_overwritten_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const ViewsInput in = make_views_input(dev, 111);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value first = stage_or_fail(ctx, *stager, in.state_dict, "first");
  Tensor(in.tensor1).fill_(-3.0);
  Tensor(in.tensor3).fill_(6.0);
  const Value second = stage_or_fail(ctx, *stager, in.state_dict, "second");
  ctx.add_failures(verify_staged(in.state_dict, second, memory_expectation(cfg)));
  ctx.check(all_equal(first["tensor1"].as_tensor(), -3.0), "tensor1", "aliasing of earlier results",
            "the result of the first stage does not show the values of the second (it must alias the cache)");
  ctx.check(all_equal(first["recursive"]["type"]["tensor1"].as_tensor(), 6.0), "recursive.type.tensor1",
            "aliasing of earlier results", "the result of the first stage does not show the values of the second");
}

// Two stagers never share buffers.
void two_stagers_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const ViewsInput in = make_views_input(dev, 121);
  auto one = ctx.make_stager(stager_config(cfg));
  auto two = ctx.make_stager(stager_config(cfg));
  const Value a = stage_or_fail(ctx, *one, in.state_dict, "stager one");
  const Value b = stage_or_fail(ctx, *two, in.state_dict, "stager two");
  const Tensor b_copy = b["tensor1"].as_tensor().clone();
  for (const TensorLeaf& la : tensor_leaves(a)) {
    for (const TensorLeaf& lb : tensor_leaves(b)) {
      const auto* pa = static_cast<const std::byte*>(la.tensor.storage().data());
      const auto* pb = static_cast<const std::byte*>(lb.tensor.storage().data());
      const bool overlap = pa != nullptr && pb != nullptr && pa < pb + lb.tensor.storage().nbytes() &&
                           pb < pa + la.tensor.storage().nbytes();
      ctx.check(!overlap, la.path, "stager isolation", "the two stagers' buffers for " + lb.path + " overlap");
    }
  }
  Tensor(in.tensor1).fill_(1.5);
  (void)stage_or_fail(ctx, *one, in.state_dict, "stager one again");
  ctx.check(Tensor::equal(b["tensor1"].as_tensor(), b_copy), "tensor1", "stager isolation",
            "staging with one stager changed a result of the other");
}

// A source storage resized since the last stage is staged into a new buffer of its new size.
void source_resized_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  const Tensor t = Tensor::random({4, 4}, DType::float32, 131, dev);
  const Value sd = Value::dict({{"param", t}});
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value first = stage_or_fail(ctx, *stager, sd, "before resize");
  const Tensor first_copy = first["param"].as_tensor().clone();
  Storage grown = t.storage();
  grown.resize(256);  // 64 -> 256 bytes; the tensor still addresses the first 64
  // New values in the tensor's bytes and in the new tail: the stage after the resize copies them
  // all (the whole storage, verified byte for byte), and none of them reach the earlier result.
  const Tensor next = Tensor::random({64}, DType::float32, 132, dev);  // NaN payloads and -0.0 among them
  copy_bytes(grown, 0, next.storage(), 0, 256);
  const Value second = stage_or_fail(ctx, *stager, sd, "after resize");
  ctx.add_failures(verify_staged(sd, second, memory_expectation(cfg)));
  ctx.check(Tensor::equal(first["param"].as_tensor(), first_copy), "param", "resize",
            "the result staged before the resize changed: the stage after it wrote into the old buffer");
  if (second.kind() == Value::Kind::dict && second["param"].is_tensor()) {
    const Storage& old_buffer = first["param"].as_tensor().storage();
    const Storage& new_buffer = second["param"].as_tensor().storage();
    const auto* old_begin = static_cast<const std::byte*>(old_buffer.data());
    const auto* new_begin = static_cast<const std::byte*>(new_buffer.data());
    const bool overlap = old_begin != nullptr && new_begin != nullptr && old_begin < new_begin + new_buffer.nbytes() &&
                         new_begin < old_begin + old_buffer.nbytes();
    ctx.check(
        !overlap && new_buffer.nbytes() == 256, "param", "resize",
        fmt::format("the storage grown to 256 bytes was staged into {} of {} bytes, {} the buffer of the stage "
                    "before: a new buffer of the new size was expected",
                    overlap ? "a buffer" : "a new buffer", new_buffer.nbytes(), overlap ? "overlapping" : "beside"));
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(cache_lifetime) {
  add_matrix(registry, "cache_entry_dies_with_source",
             "When a source storage dies its cache entry goes (counted by cache_stats: an implementation without "
             "them is not_supported)",
             "strict", Profile::strict, kBothSources, kFourConfigs, entry_dies_with_source_case,
             Requirements{.cache_stats = true});
  add_matrix(registry, "dead_source_buffer_not_reused",
             "A source storage the caller drops dies (the stager keeps no source alive); a new source at the dead "
             "one's address then gets a new buffer and the dead source's result is never overwritten",
             "strict", Profile::strict, kBothSources, kFourConfigs, dead_source_buffer_not_reused_case);
  add_matrix(registry, "earlier_results_overwritten",
             "A result returned by stage N aliases the cache and shows the values of stage N+1 of the same sources",
             "strict", Profile::strict, kBothSources, kFourConfigs, earlier_results_overwritten_case);
  add_matrix(registry, "two_stagers_distinct_buffers",
             "Two stagers staging the same sources never share or overlap buffers", "strict", Profile::strict,
             kBothSources, kFourConfigs, two_stagers_case);
  add_matrix(registry, "source_resized",
             "A source storage grown since the last stage, with new values in it, is staged whole into a new buffer "
             "of its new size; the result staged before keeps its values",
             "strict", Profile::strict, kBothSources, kFourConfigs, source_resized_case);
}

}  // namespace stagekit::conformance
