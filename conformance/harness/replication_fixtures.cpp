// The replication cases' inputs, strict replica verifier and scratch-directory helpers.
#include "replication_fixtures.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <fmt/std.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <limits>
#include <system_error>

#include "verify/verify.h"

namespace stagekit::conformance {
namespace fs = std::filesystem;

void add_replication_cases(CaseRegistry& registry, const CaseName& name, std::string_view description,
                           std::string_view source, Profile profile, std::span<const int> world_sizes,
                           const WorldBody& body, Requirements extra) {
  extra.replication = true;
  add_world_cases(registry, "replication", name, description, source, profile, kCpuSource, world_sizes, body, extra);
}

ReplicationConfig replication_config(const fs::path& dir, std::chrono::milliseconds timeout) {
  ReplicationConfig config;
  config.timeout = timeout;
  config.storage_dir = dir.string();
  return config;
}

int partner_of(int rank, int world_size) { return (rank + world_size / 2) % world_size; }

Value simple_state_dict(int rank, std::uint64_t round) {
  const Device cpu = Device::cpu();
  const std::uint64_t salt = 1000 * round;
  return Value::dict({
      {"layer1.weight", rank_tensor({64, 128}, rank, cpu, salt + 1)},
      {"layer1.bias", rank_tensor({64}, rank, cpu, salt + 2)},
      {"layer2.weight", rank_tensor({32, 64}, rank, cpu, salt + 3)},
      {"layer2.bias", rank_tensor({32}, rank, cpu, salt + 4)},
      {"nested", Value::dict({{"param", rank_tensor({16, 16}, rank, cpu, salt + 5)},
                              {"buffer", rank_tensor({8}, rank, cpu, salt + 6)}})},
      {"scalar", Tensor::scalar(static_cast<double>(rank), DType::float32)},
  });
}

Value dtensor_state_dict(int rank, int world_size) {
  const DeviceMesh mesh = world_mesh(world_size, Device::cpu());
  const Tensor full = Tensor::arange(128 * 16, DType::float32).view({128, 16});
  return Value::dict({
      {"sharded_param", Value(DTensor::distribute(full, mesh, {Placement::shard(0)}, rank))},
      {"replicated_param", Value(DTensor::distribute(Tensor::full({8, 8}, 128.0 * 100.0, DType::float32), mesh,
                                                     {Placement::replicate()}, rank))},
      {"rank_scalar", Tensor::scalar(static_cast<double>(rank), DType::float32)},
  });
}

Value sharded_tensor_state_dict(int rank, int world_size) {
  const std::int64_t rows = 64 / world_size;
  ShardedTensorMetadata meta;
  meta.size = {64, 8};
  meta.dtype = DType::float32;
  for (int i = 0; i < world_size; ++i) meta.shards.push_back({{rows * i, 0}, {rows, 8}, i, Device::cpu()});
  const Tensor local = Tensor::arange(64 * 8, DType::float32).view({64, 8}).narrow(0, rows * rank, rows).clone();
  auto st = std::make_shared<ShardedTensor>(
      std::vector<LocalTensorShard>{{local, meta.shards[static_cast<std::size_t>(rank)]}}, meta, rank);
  return Value::dict(
      {{"sharded_tensor", Value(st)}, {"rank_scalar", Tensor::scalar(static_cast<double>(rank), DType::float32)}});
}

Value shared_storage_state_dict(int rank) {
  const Device cpu = Device::cpu();
  const Tensor base = rank_tensor({8, 12}, rank, cpu, 11);
  const Tensor long_tail = rank_tensor({100}, rank, cpu, 12);
  Tensor independent = rank_tensor({3, 3}, rank, cpu, 13);
  independent.set_attr("requires_grad", Value(true));
  independent.set_attr("note", Value(fmt::format("rank {}", rank)));
  // Attributes beyond plain values: a tensor (an EMA shadow) and a container (a metadata dict).
  independent.set_attr("ema", rank_tensor({3, 3}, rank, cpu, 15));
  independent.set_attr("meta",
                       Value::dict({{"version", Value(rank + 1)}, {"tags", Value::list({Value("ema"), Value(0.5)})}}));
  return Value::dict({
      {"base", base},
      {"rows_2_to_4", base.narrow(0, 2, 3)},
      {"transposed", base.transpose(0, 1)},
      {"every_third_column", base.slice(1, 1, 12, 3)},
      {"flat", base.view({96})},
      {"broadcast", rank_tensor({1, 4}, rank, cpu, 14).expand({5, 4})},
      {"tail_of_a_long_storage", long_tail.narrow(0, 90, 5)},
      {"independent", independent},
  });
}

Value mixed_leaves_state_dict(int rank) {
  const Device cpu = Device::cpu();
  const Value twice = Value::list({Value(rank), Value("shared node")});
  Bytes bytes;
  for (int i = 0; i < 6; ++i) bytes.data.push_back(static_cast<std::byte>(i * (rank + 1)));
  Value ordered = Value::dict({{"z", Value(rank)}, {"a", rank_tensor({2, 2}, rank, cpu, 26)}});
  ordered.as_dict().set_type_name("collections.OrderedDict");
  Value defaults = Value::dict({{"step", Value(rank)}});
  defaults.as_dict().set_type_name("collections.defaultdict");
  defaults.as_dict().set_default_factory("builtins.dict");  // format 1.2
  Value sd = Value::dict({
      {"int", Value(7 * rank + 1)},
      {"int_max", Value(std::numeric_limits<std::int64_t>::max())},
      {"float", Value(0.5 + rank)},
      {"nan", Value(std::numeric_limits<double>::quiet_NaN())},
      {"negative_zero", Value(-0.0)},
      {"string", Value(fmt::format("rank {}: \xce\xbb", rank))},
      {"bytes", Value(bytes)},
      {"none", Value()},
      {"flag", Value(rank % 2 == 0)},
      {"list", Value::list({Value(1), Value("two"), rank_tensor({3}, rank, cpu, 21)})},
      {"tuple", Value::tuple({Value(3.0), Value(), Value::tuple({})})},
      // Empty containers, as an optimizer's state is before its first step: each kept, nested too.
      {"empty_dict", Value::dict()},
      {"empty_list", Value::list()},
      {"optimizer",
       Value::dict(
           {{"state", Value::dict()},
            {"param_groups",
             Value::list({Value::dict({{"params", Value::list()}, {"lr", Value(0.01)}, {"extra", Value::dict()}})})}})},
      {"int_keys",
       Value::dict({{std::int64_t{0}, Value("zero")}, {std::int64_t{5}, rank_tensor({2, 2}, rank, cpu, 22)}})},
      {"frozen_config", Value::object("Config", {{"lr", Value(0.1)}, {"steps", Value(10)}}, true)},
      {"train_state",
       Value::object("TrainState", {{"step", Value(rank)}, {"weights", rank_tensor({4}, rank, cpu, 23)}})},
      {"same_node_a", twice},
      {"same_node_b", twice},
      {"empty", Tensor::empty({0, 3}, DType::float32)},
      {"zero_dim", Tensor::scalar(static_cast<double>(rank), DType::float64)},
      {"int64", Tensor::random({5}, DType::int64, 31 + static_cast<std::uint64_t>(rank))},
      {"bfloat16", Tensor::random({5}, DType::bfloat16, 32 + static_cast<std::uint64_t>(rank))},
      {"bool", Tensor::random({5}, DType::bool_, 33 + static_cast<std::uint64_t>(rank))},
      {"uint8", Tensor::random({5}, DType::uint8, 34 + static_cast<std::uint64_t>(rank))},
      // The Python container kinds (spec C.1.9): their types survive too.
      {"ordered", ordered},
      {"defaults", defaults},
      {"point", Value::named_tuple("replica.Point", {{"step", Value(rank)}, {"w", rank_tensor({2}, rank, cpu, 24)}})},
      {"tags", Value::set({Value("a"), Value(rank), Value::tuple({Value(1), Value(2.5)})})},
      {"frozen_tags", Value::set({Value("b")}, /*frozen=*/true)},
      {"slotted", Value::slots_object("replica.Slotted", {{"t", rank_tensor({3}, rank, cpu, 25)}, {"n", Value(4)}})},
  });
  // Every other dtype as a small tensor of arbitrary bits (NaNs, infinities and subnormals planted):
  // a replica that relabels one dtype as another of its size (the two float8s, int16 and float16) is
  // told by the dtype, bits compared exactly.
  for (const DType dtype : kAllDTypes) {
    if (dtype == DType::float32 || dtype == DType::float64 || dtype == DType::int64 || dtype == DType::bfloat16 ||
        dtype == DType::bool_ || dtype == DType::uint8) {
      continue;  // above
    }
    Tensor t = Tensor::empty({6}, dtype);
    t.random_bytes_(40 + static_cast<std::uint64_t>(dtype) + 100 * static_cast<std::uint64_t>(rank));
    sd.as_dict().set(fmt::format("dtype_{}", dtype_name(dtype)), Value(t));
  }
  return sd;
}

Value sized_state_dict(int rank, std::size_t bytes, std::uint64_t round) {
  const auto n = static_cast<std::int64_t>(bytes / 4);
  return Value::dict({{"blob", rank_tensor({n}, rank, Device::cpu(), 100 + round)},
                      {"rank", Value(rank)},
                      {"round", Value(static_cast<std::int64_t>(round))}});
}

bool check_replica(CaseContext& ctx, int rank, std::string_view what, const Value& received, const Value& expected) {
  MemoryExpectation memory;
  memory.check_memory = false;
  const std::vector<Failure> failures = verify_staged(expected, received, memory);
  for (const Failure& f : failures) {
    ctx.check(false, at_rank(rank, f.path), f.property, fmt::format("{}: {}", what, f.detail));
  }
  return failures.empty();
}

std::unique_ptr<ReplicationStagerUnderTest> make_replication_stager_or_fail(CaseContext& ctx, int rank,
                                                                            dist::Communicator& comm,
                                                                            const ReplicationConfig& config) {
  try {
    auto stager = ctx.impl().make_replication_stager(comm, config);
    ctx.check(stager != nullptr, at_rank(rank, "<stager>"), "make_replication_stager", "returned nothing");
    return stager;
  } catch (const std::exception& e) {
    ctx.check(false, at_rank(rank, "<stager>"), "make_replication_stager", e.what());
    return nullptr;
  }
}

std::optional<Value> replicate_or_fail(CaseContext& ctx, int rank, ReplicationStagerUnderTest& stager,
                                       const Value& state_dict, std::string_view what) {
  try {
    return stager.stage(state_dict);
  } catch (const std::exception& e) {
    ctx.check(false, at_rank(rank, "<stager>"), "stage", fmt::format("{}: {}", what, e.what()));
    return std::nullopt;
  }
}

std::optional<Value> replicate_once(CaseContext& ctx, int rank, dist::Communicator& comm, const Value& state_dict) {
  ScratchDir dir("stagekit-replication");
  auto stager = make_replication_stager_or_fail(ctx, rank, comm, replication_config(dir.path()));
  if (!stager) return std::nullopt;
  auto got = replicate_or_fail(ctx, rank, *stager, state_dict, "stage");
  stager->close();
  return got;
}

std::optional<Value> load_or_fail(CaseContext& ctx, int rank, const std::string& path) {
  try {
    return ctx.impl().load_replica(path);
  } catch (const std::exception& e) {
    ctx.check(false, at_rank(rank, path), "load_replica", e.what());
    return std::nullopt;
  }
}

void check_persisted_replica(CaseContext& ctx, int rank, const ReplicationStagerUnderTest& stager,
                             const Value& expected, std::string_view what) {
  if (auto loaded = load_or_fail(ctx, rank, stager.persisted_path())) check_replica(ctx, rank, what, *loaded, expected);
}

ScratchDir::ScratchDir(std::string_view prefix) {
  std::string templ = (fs::temp_directory_path() / fmt::format("{}-XXXXXX", prefix)).string();
  if (::mkdtemp(templ.data()) == nullptr) {
    throw IoError(fmt::format("cannot create a scratch directory {}: {}", templ, std::strerror(errno)));
  }
  path_ = templ;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool check_only_replica_left(CaseContext& ctx, int rank, const fs::path& dir, const fs::path& replica_path,
                             std::string_view when) {
  const std::vector<std::string> names = files_in(dir);
  std::error_code ec;
  const bool ok = names.size() == 1 && fs::equivalent(dir / names.front(), replica_path, ec);
  return ctx.check(ok, at_rank(rank, dir.string()), "files left",
                   fmt::format("{}: the storage directory holds [{}], expected only {}", when, fmt::join(names, ", "),
                               replica_path.filename()));
}

}  // namespace stagekit::conformance
