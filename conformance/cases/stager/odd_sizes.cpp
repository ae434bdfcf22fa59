// Large storages whose byte counts no block size or thread split divides are staged whole. A fast
// copy routine moves large storages in blocks (pages, cache lines, vector registers) or splits them
// between threads: one that forgets the remainder loses the last bytes of every storage whose size is
// not a multiple, which the other cases (power-of-two sizes, or too small for the fast path) never show.
#include <fmt/format.h>

#include <cstdint>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

struct OddStorage {
  const char* key;
  DType dtype;
  std::int64_t elements;
};

// 1 MiB + 1 byte (= 17 × 61681), 3 MiB + 5 bytes (odd, and no multiple of 3, 5 or 7), 2 MiB + 12 bytes of
// float32, 1 MiB + 16 bytes of complex128, and 17 MiB + 3 bytes for copies that go parallel only above
// 16 MiB. No block of 32 bytes or more divides any of them (nor the viewed storage below), and every
// split from 2 to 16 leaves a remainder in at least four of the six.
constexpr OddStorage kStorages[] = {
    {"bytes_1MiB_plus_1", DType::uint8, (std::int64_t{1} << 20) + 1},
    {"bytes_3MiB_plus_5", DType::uint8, (std::int64_t{3} << 20) + 5},
    {"float32_2MiB_plus_12", DType::float32, (std::int64_t{1} << 19) + 3},
    {"complex128_1MiB_plus_16", DType::complex128, (std::int64_t{1} << 16) + 1},
    {"bytes_17MiB_plus_3", DType::uint8, (std::int64_t{17} << 20) + 3},
};

void odd_sizes_case(CaseContext& ctx, Source src, PinShare cfg) {
  const Device dev = source_device(src);
  auto dict = std::make_shared<Dict>();
  std::vector<Tensor> sources;
  std::uint64_t seed = 1301;
  for (const OddStorage& s : kStorages) {
    sources.push_back(Tensor::random({s.elements}, s.dtype, seed++, dev));
    dict->set(s.key, sources.back());
  }
  // A view one byte into a storage of 2 MiB + 3 bytes, ending one byte before its end: the copy starts
  // and ends off every alignment.
  const Tensor unaligned = Tensor::random({(std::int64_t{2} << 20) + 3}, DType::uint8, seed++, dev);
  sources.push_back(unaligned);
  dict->set("view_from_byte_1", unaligned.narrow(0, 1, (std::int64_t{2} << 20) + 1));
  const Value sd(dict);
  auto stager = ctx.make_stager(stager_config(cfg));
  const Value first = stage_or_fail(ctx, *stager, sd, "the first stage");
  ctx.add_failures(verify_staged(sd, first, memory_expectation(cfg)));
  // New bytes everywhere: a stage into the cached buffers must copy every one of them again.
  for (Tensor& t : sources) t.random_(seed++);
  const Value second = stage_or_fail(ctx, *stager, sd, "a stage into cached buffers");
  ctx.add_failures(verify_staged(sd, second, memory_expectation(cfg)));
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(odd_sizes) {
  add_matrix(registry, "large_odd_sizes",
             "Storages of 1 to 17 MiB whose byte counts no block size or thread split divides (1 MiB + 1 byte, "
             "3 MiB + 5, 17 MiB + 3, a view from byte 1) are staged byte-exact, cold and into cached buffers",
             "strict", Profile::strict, kBothSources, kFourConfigs, odd_sizes_case);
}

}  // namespace stagekit::conformance
