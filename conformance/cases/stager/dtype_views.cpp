// One storage viewed as several dtypes (a float8 weight and its uint8 view, a float32 buffer and its
// int32 bit view, complex values and their real parts) is one storage: staged once, whole, with every
// view on the one staged buffer. Storage identity belongs to the storage, never to the storage and
// the dtype reading it, and a storage's size need not be a multiple of any view's element size.
#include <fmt/format.h>

#include <cstdint>

#include "../../harness/fixtures.h"

namespace stagekit::conformance {
namespace {

struct DtypeViews {
  Value state_dict;
  Tensor as_float32;  // [4, 4], the first 64 of the 72 bytes of the first storage
  Tensor odd_bytes;   // uint8 [18], the whole of an 18-byte storage that float32 [4] views first
};

DtypeViews make_dtype_views(Device dev) {
  const Storage s = Tensor::random({18}, DType::float32, 1601, dev).storage();  // 72 bytes
  const Tensor as_float32 = Tensor::from_storage(s, DType::float32, {4, 4}, {4, 1}, 0);
  const Storage odd = Tensor::random({18}, DType::uint8, 1602, dev).storage();  // 18 bytes
  const Tensor odd_bytes = Tensor::from_storage(odd, DType::uint8, {18}, {1}, 0);
  auto d = std::make_shared<Dict>();
  d->set("as_float32", as_float32);
  d->set("as_int32", Tensor::from_storage(s, DType::int32, {18}, {1}, 0));
  d->set("as_uint8", Tensor::from_storage(s, DType::uint8, {72}, {1}, 0));
  d->set("as_complex64", Tensor::from_storage(s, DType::complex64, {9}, {1}, 0));
  d->set("as_float64_tail", Tensor::from_storage(s, DType::float64, {2}, {1}, 7));  // bytes 56 to 72
  d->set("as_bfloat16_column", Tensor::from_storage(s, DType::bfloat16, {9}, {4}, 1));
  // The float32 view comes first: a buffer sized in whole float32 elements would hold 16 of the 18 bytes.
  d->set("odd_as_float32", Tensor::from_storage(odd, DType::float32, {4}, {1}, 0));
  d->set("odd_as_uint8", odd_bytes);
  return {Value(d), as_float32, odd_bytes};
}

void check_one_buffer(CaseContext& ctx, const Value& staged, const std::vector<const char*>& keys, std::size_t nbytes) {
  const Storage first = staged[keys.front()].as_tensor().storage();
  ctx.check(first.nbytes() == nbytes, keys.front(), "storage size",
            fmt::format("the staged storage holds {} bytes; the source storage {}", first.nbytes(), nbytes));
  for (const char* key : keys) {
    ctx.check(staged[key].as_tensor().storage().is_alias_of(first), key, "storage sharing",
              fmt::format("viewed as {} it is staged on a storage of its own, not on the one of {}: a storage read "
                          "as several dtypes is one storage",
                          dtype_name(staged[key].as_tensor().dtype()), keys.front()));
  }
}

void dtype_views_case(CaseContext& ctx, Source src, PinShare cfg) {
  const DtypeViews in = make_dtype_views(source_device(src));
  auto stager = ctx.make_stager(stager_config(cfg));
  const std::vector<const char*> wide = {"as_float32",   "as_int32",        "as_uint8",
                                         "as_complex64", "as_float64_tail", "as_bfloat16_column"};
  const std::vector<const char*> odd = {"odd_as_float32", "odd_as_uint8"};
  for (int round = 0; round < 2; ++round) {
    const Value staged = stage_or_fail(ctx, *stager, in.state_dict, round == 0 ? "the first stage" : "a re-stage");
    ctx.add_failures(verify_staged(in.state_dict, staged, memory_expectation(cfg)));
    check_one_buffer(ctx, staged, wide, 72);
    check_one_buffer(ctx, staged, odd, 18);
    // Aliasing is real: bytes written through one staged view are read through another.
    Tensor(staged["as_uint8"].as_tensor()).fill_(0);
    ctx.check(all_equal(staged["as_float32"].as_tensor(), 0.0), "as_float32", "aliasing",
              "after zeroing the staged uint8 view, the staged float32 view of the same storage still holds values");
    // New values for the re-stage, written through one dtype and staged through all of them.
    Tensor(in.as_float32).fill_(-1.25);
    Tensor(in.odd_bytes).fill_(7);
  }
}

}  // namespace

STAGEKIT_CONFORMANCE_CASES(dtype_views) {
  add_matrix(registry, "storage_viewed_as_several_dtypes",
             "A storage viewed as float32, int32, uint8, complex64, float64 and bfloat16, and an 18-byte storage "
             "viewed as float32 first, are each staged once and whole, every view on the one staged buffer (cold "
             "and re-staged)",
             "strict", Profile::strict, kBothSources, kFourConfigs, dtype_views_case);
}

}  // namespace stagekit::conformance
