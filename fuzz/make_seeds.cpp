// make_seeds.cpp — writes the seed corpora of the fuzz targets.
//
//   stagekit_replica_seeds DIR
//
// writes DIR/replica/ (valid replica files, for stagekit_replica_fuzz) and DIR/message/ (valid
// message heads, for stagekit_message_fuzz). Every seed is a small state dict (each replica file
// well under 64 KiB: every storage takes at least one 4096-byte aligned blob) packed with
// pack_state_dict() and written with encode_replica() and with message_head(), covering every node
// kind of the manifest: scalars, strings, bytes, containers, objects, shared nodes, tensors with
// views over one storage, every dtype, DTensors, ShardedTensors and empty tensors; plus an error
// head (a sender with no state dict). Each seed is decoded once here too, so that a seed the reader
// refuses stops the run. The regression inputs (regressions() below) must instead be refused, in
// both framings.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/core/tensor.h"
#include "stagekit/core/value.h"
#include "stagekit/replicate/packed_message.h"
#include "stagekit/replicate/packed_state_dict.h"
#include "stagekit/replicate/replica_file.h"

namespace {

using stagekit::Bytes;
using stagekit::DeviceMesh;
using stagekit::DeviceType;
using stagekit::DType;
using stagekit::IntList;
using stagekit::Placement;
using stagekit::Storage;
using stagekit::Tensor;
using stagekit::Value;

constexpr std::size_t kMaxSeedBytes = 64 * 1024;

struct Seed {
  std::string name;
  Value state_dict;
  stagekit::replicate::ReplicaWriteOptions options{};
};

Bytes bytes_of(std::string_view s) {
  Bytes b;
  for (const char c : s) b.data.push_back(static_cast<std::byte>(c));
  return b;
}

Value scalars() {
  auto d = std::make_shared<stagekit::Dict>();
  d->set("none", Value());
  d->set("true", true);
  d->set("false", false);
  d->set("zero", 0);
  d->set("int_min", std::numeric_limits<std::int64_t>::min());
  d->set("int_max", std::numeric_limits<std::int64_t>::max());
  d->set("pi", 3.141592653589793);
  d->set("neg_zero", -0.0);
  d->set("nan", std::numeric_limits<double>::quiet_NaN());
  d->set("inf", -std::numeric_limits<double>::infinity());
  d->set("empty_string", "");
  d->set("string", "step/lr \xc3\xa9t\xc3\xa9");
  d->set("bytes", bytes_of(std::string("\0\x01\xff payload", 11)));
  d->set("empty_bytes", Bytes{});
  d->set(std::int64_t{7}, "integer key");
  d->set(std::int64_t{-1}, "negative integer key");
  return Value(d);
}

Value nested() {
  const Value shared_list = Value::list({1, 2.5, "three"});
  const Value frozen = Value::object("OptimizerConfig", {{"lr", 1e-3}, {"betas", Value::tuple({0.9, 0.999})}},
                                     /*frozen=*/true);
  const Value mutable_object =
      Value::object("TrainState", {{"step", 1200}, {"history", shared_list}, {"config", frozen}});
  return Value::dict({
      {"list", Value::list({Value::list({}), Value::tuple({}), Value::dict({})})},
      {"tuple", Value::tuple({1, Value::tuple({2, Value::tuple({3, Value()})})})},
      {"shared_twice", Value::list({shared_list, shared_list})},
      {"object", mutable_object},
      {"same_object_again", mutable_object},
      {"deep", Value::dict({{"a", Value::dict({{"b", Value::dict({{"c", Value::list({frozen})}})}})}})},
  });
}

Value tensor_views() {
  Tensor base = Tensor::arange(24, DType::float32).view({4, 6});
  base.set_attr("requires_grad", true);
  base.set_attr("name", "weight");
  const Tensor transposed = base.transpose(0, 1);
  const Tensor row = base.select(0, 2);
  const Tensor strided = base.slice(1, 1, 6, 2);
  const Tensor narrowed = base.narrow(0, 1, 2);
  const Tensor broadcast = Tensor::arange(3, DType::int32).view({1, 3}).expand({5, 3});
  const Tensor offset_view = base.as_strided({2, 2}, {6, 1}, 7);
  return Value::dict({
      {"weight", base},
      {"weight_t", transposed},
      {"row", row},
      {"strided", strided},
      {"narrowed", narrowed},
      {"broadcast", broadcast},
      {"offset_view", offset_view},
      {"weight_again", base},
      {"scalar", Tensor::scalar(2.5, DType::float64)},
  });
}

Value dtypes(std::size_t first, std::size_t last) {
  auto d = std::make_shared<stagekit::Dict>();
  for (std::size_t i = first; i < last && i < stagekit::kAllDTypes.size(); ++i) {
    const DType dtype = stagekit::kAllDTypes[i];
    d->set(std::string(stagekit::dtype_name(dtype)), Tensor::random({3, 2}, dtype, 1000 + i));
  }
  return Value(d);
}

// Every dtype viewing one 64-byte storage: a single blob shared by 17 tensors.
Value dtypes_sharing_one_storage() {
  const Storage storage = Storage::allocate(64);
  Tensor::from_storage(storage, DType::uint8, {64}, {1}).random_bytes_(42);
  auto d = std::make_shared<stagekit::Dict>();
  for (const DType dtype : stagekit::kAllDTypes) {
    const auto n = static_cast<std::int64_t>(16 / stagekit::element_size(dtype));
    d->set(std::string(stagekit::dtype_name(dtype)), Tensor::from_storage(storage, dtype, {n}, {1}));
  }
  return Value(d);
}

Value dtensors() {
  const Tensor full = Tensor::arange(12, DType::float32).view({6, 2});
  const auto mesh = DeviceMesh::one_d(DeviceType::cpu, 4);
  const DeviceMesh grid(DeviceType::cpu, {2, 2}, {0, 1, 2, 3});
  const auto sharded = stagekit::DTensor::distribute(full, mesh, {Placement::shard(0)}, 1);
  return Value::dict({
      {"shard0_rank1", Value(sharded)},
      {"empty_shard_rank3", Value(stagekit::DTensor::distribute(full, mesh, {Placement::shard(0)}, 3))},
      {"grid", Value(stagekit::DTensor::distribute(full, grid, {Placement::shard(1), Placement::replicate()}, 2))},
      {"partial", Value(stagekit::DTensor::distribute(Tensor::random({2, 2}, DType::bfloat16, 9), mesh,
                                                      {Placement::partial()}, 0))},
      {"same_dtensor_again", Value(sharded)},
  });
}

Value sharded_tensors() {
  using stagekit::ShardMetadata;
  const stagekit::ShardedTensorMetadata meta{
      {{{0, 0}, {5, 10}, 0, stagekit::Device::cpu()}, {{5, 0}, {5, 10}, 1, stagekit::Device::cpu()}},
      {10, 10},
      DType::float32};
  const auto st = std::make_shared<stagekit::ShardedTensor>(
      std::vector<stagekit::LocalTensorShard>{{Tensor::random({5, 10}, DType::float32, 5), meta.shards[1]}}, meta, 1);
  const auto none_local = std::make_shared<stagekit::ShardedTensor>(std::vector<stagekit::LocalTensorShard>{}, meta, 2);
  return Value::dict({{"sharded", Value(st)}, {"no_local_shards", Value(none_local)}, {"again", Value(st)}});
}

Value empty_tensors() {
  const Storage zero_bytes = Storage::allocate(0);
  return Value::dict({
      {"empty_1d", Tensor::empty({0}, DType::float32)},
      {"empty_2d", Tensor::zeros({0, 5}, DType::int64)},
      {"on_zero_byte_storage", Tensor::from_storage(zero_bytes, DType::float16, {0, 3}, {3, 1})},
      {"same_zero_byte_storage", Tensor::from_storage(zero_bytes, DType::uint8, {0}, {1})},
      {"undefined_storage", Tensor::from_storage(Storage(), DType::float64, {2, 0}, {0, 1})},
  });
}

Value mixed() {
  const Tensor w = Tensor::random({8, 4}, DType::float16, 3);
  return Value::dict({
      {"model", Value::dict({{"layer.0.weight", w}, {"layer.0.weight_t", w.transpose(0, 1)}})},
      {"optimizer",
       Value::dict({{"state", Value::dict({{std::int64_t{0}, Value::dict({{"step", 10}})}})},
                    {"param_groups", Value::list({Value::dict({{"lr", 0.1}, {"params", Value::list({0})}})})}})},
      {"rng", bytes_of("rng-state")},
      {"epoch", 3},
  });
}

// Inputs the reader once got wrong (found by fuzzing), kept as seeds so every run starts from them
// and checked here to be refused with a stagekit::Error. Each is a hand-made manifest (FORMAT.md,
// "Manifest") in a well-formed replica and in a well-formed message head, so that it reaches the
// manifest decoder in both framings.
struct Regression {
  std::string name;
  std::vector<std::byte> manifest;
  std::vector<std::uint64_t> storage_sizes;
};

class ManifestBytes {
 public:
  explicit ManifestBytes(const std::vector<std::uint64_t>& storage_sizes) {
    raw("SKMF", 4).u16(1).u16(0).u64(storage_sizes.size());
    for (const std::uint64_t size : storage_sizes) u64(size);
  }
  ManifestBytes& u8(std::uint8_t v) { return raw(&v, 1); }
  ManifestBytes& u16(std::uint16_t v) { return raw(&v, 2); }
  ManifestBytes& u64(std::uint64_t v) { return raw(&v, 8); }
  ManifestBytes& i64(std::int64_t v) { return raw(&v, 8); }
  ManifestBytes& raw(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    bytes.insert(bytes.end(), b, b + n);
    return *this;
  }
  std::vector<std::byte> bytes;
};

std::vector<Regression> regressions() {
  constexpr std::uint8_t kTensorTag = 6;
  constexpr std::uint8_t kFloat32 = 11;
  std::vector<Regression> out;
  // A float32 tensor of INT64_MAX elements with stride INT64_MAX: the element count fits 64 bits but
  // the end byte, (last element + 1) * 4, overflowed 128-bit arithmetic (UBSan, signed overflow).
  out.push_back({"regression_extent_overflow",
                 ManifestBytes({16})
                     .u8(kTensorTag)
                     .u8(kFloat32)
                     .u64(1)
                     .i64(std::numeric_limits<std::int64_t>::max())
                     .i64(std::numeric_limits<std::int64_t>::max())
                     .i64(0)
                     .u64(0)
                     .u64(0)
                     .bytes,
                 {16}});
  return out;
}

// What a receiver does with a message head: check it, take storages of the announced sizes
// (zero-filled), unpack.
Value receive(std::span<const std::byte> head) {
  const auto checked = stagekit::replicate::read_message_head(head, "seed", 0);
  std::vector<Storage> storages;
  for (const std::uint64_t size : checked.storage_sizes) {
    storages.push_back(Storage::allocate(size));
    if (size > 0) std::memset(storages.back().data(), 0, size);
  }
  return stagekit::replicate::unpack_state_dict(checked.manifest, storages);
}

// True when receive() accepts `head`; false when it refuses it with a stagekit::Error.
bool decodes(std::span<const std::byte> head) {
  try {
    (void)receive(head);
    return true;
  } catch (const stagekit::Error&) {
    return false;
  }
}

void write_file(const std::filesystem::path& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 || std::string_view(argv[1]) == "--help" || std::string_view(argv[1]) == "-h") {
    std::fprintf(stderr,
                 "usage: %s DIR\n  writes the fuzz seed corpora: valid replica files into DIR/replica, valid "
                 "message heads into DIR/message\n",
                 argc > 0 ? argv[0] : "stagekit_replica_seeds");
    return argc == 2 ? 0 : 2;
  }
  const std::filesystem::path replica_dir = std::filesystem::path(argv[1]) / "replica";
  const std::filesystem::path message_dir = std::filesystem::path(argv[1]) / "message";
  try {
    std::filesystem::create_directories(replica_dir);
    std::filesystem::create_directories(message_dir);
    std::vector<Seed> seeds;
    seeds.push_back({"empty_dict", Value::dict({})});
    seeds.push_back({"empty_list_root", Value::list({})});
    seeds.push_back({"scalars", scalars()});
    seeds.push_back({"nested", nested()});
    seeds.push_back({"tensor_views", tensor_views()});
    seeds.push_back({"dtypes_a", dtypes(0, 8)});
    seeds.push_back({"dtypes_b", dtypes(8, 17)});
    seeds.push_back({"dtypes_one_storage", dtypes_sharing_one_storage()});
    seeds.push_back({"dtensors", dtensors(), {.source_rank = 1, .holder_rank = 2}});
    seeds.push_back({"sharded_tensors", sharded_tensors(), {.source_rank = 1, .holder_rank = 0}});
    seeds.push_back({"empty_tensors", empty_tensors()});
    seeds.push_back({"mixed", mixed(), {.source_rank = 0, .holder_rank = 3}});
    std::size_t total = 0;
    for (const Seed& seed : seeds) {
      const auto packed = stagekit::replicate::pack_state_dict(seed.state_dict);
      const auto bytes = stagekit::replicate::encode_replica(packed, seed.options);
      if (bytes.size() >= kMaxSeedBytes) {
        std::fprintf(stderr, "seed %s is %zu bytes (limit %zu): make it smaller\n", seed.name.c_str(), bytes.size(),
                     kMaxSeedBytes);
        return 1;
      }
      (void)stagekit::replicate::decode_replica(bytes);  // a seed the reader refuses is a bug
      write_file(replica_dir / (seed.name + ".replica"), bytes);
      const auto head = stagekit::replicate::message_head(packed);
      (void)receive(head);
      write_file(message_dir / (seed.name + ".message"), head);
      total += bytes.size() + head.size();
    }
    const auto error_head = stagekit::replicate::error_message_head("model.lock: cannot pack a value of opaque type");
    if (decodes(error_head)) {
      std::fprintf(stderr, "an error head was read as a state dict\n");
      return 1;
    }
    write_file(message_dir / "error_head.message", error_head);
    const auto refused = regressions();
    for (const Regression& r : refused) {
      stagekit::replicate::PackedStateDict packed{r.manifest, {}};
      for (const std::uint64_t size : r.storage_sizes) {
        packed.storages.push_back(Storage::allocate(size));
        std::memset(packed.storages.back().data(), 0, size);
      }
      const auto bytes = stagekit::replicate::encode_replica(packed);
      const auto head = stagekit::replicate::message_head(packed);
      bool decoded = false;
      try {
        (void)stagekit::replicate::decode_replica(bytes);
        decoded = true;
      } catch (const stagekit::Error&) {
      }
      if (decoded || decodes(head)) {
        std::fprintf(stderr, "regression %s was decoded; the reader must refuse it\n", r.name.c_str());
        return 1;
      }
      write_file(replica_dir / (r.name + ".replica"), bytes);
      write_file(message_dir / (r.name + ".message"), head);
      total += bytes.size() + head.size();
    }
    std::printf("wrote %zu seeds, an error head and %zu regression inputs (%zu bytes) to %s and %s\n", seeds.size(),
                refused.size(), total, replica_dir.c_str(), message_dir.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "stagekit_replica_seeds: %s\n", e.what());
    return 1;
  }
  return 0;
}
