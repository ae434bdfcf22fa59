// stagekit-replica: checks and shows replica files written by ReplicationStager (FORMAT.md).
//   stagekit-replica verify FILE...      verify every byte; one line per file; exit 1 if any is bad
//   stagekit-replica show FILE           verify, then list the state dict (path, kind, dtype, shape)
//   stagekit-replica write-sample FILE   write a small valid replica (to try the tool, or for tests)
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "stagekit/core/dtensor.h"
#include "stagekit/core/error.h"
#include "stagekit/core/sharded_tensor.h"
#include "stagekit/replicate/replica_file.h"

namespace {
using namespace stagekit;

std::string size_text(std::uint64_t bytes) {
  if (bytes >= (std::uint64_t{1} << 30)) return fmt::format("{:.1f} GiB", static_cast<double>(bytes) / (1 << 30));
  if (bytes >= (std::uint64_t{1} << 20)) return fmt::format("{:.1f} MiB", static_cast<double>(bytes) / (1 << 20));
  if (bytes >= 1024) return fmt::format("{:.1f} KiB", static_cast<double>(bytes) / 1024);
  return fmt::format("{} B", bytes);
}

std::string rank_text(int rank) { return rank < 0 ? std::string("an unknown rank") : fmt::format("rank {}", rank); }

int verify(const std::vector<std::string>& files) {
  int status = 0;
  for (const std::string& file : files) {
    try {
      const replicate::ReplicaInfo info = replicate::inspect_replica(file);
      std::printf("%s: OK: format %u.%u, the state dict of %s kept by %s, %zu storage(s), %s of tensor data, %s file\n",
                  file.c_str(), info.version_major, info.version_minor, rank_text(info.source_rank).c_str(),
                  rank_text(info.holder_rank).c_str(), info.storages, size_text(info.payload_bytes).c_str(),
                  size_text(info.file_bytes).c_str());
    } catch (const Error& e) {
      std::printf("%s: BAD (%s): %s\n", file.c_str(), std::string(error_code_name(e.code())).c_str(), e.what());
      status = 1;
    }
  }
  return status;
}

void show_value(const Value& v, const std::string& path) {
  const std::string name = path.empty() ? "<root>" : path;
  auto child = [&](const std::string& segment) { return path.empty() ? segment : path + "." + segment; };
  switch (v.kind()) {
    case Value::Kind::tensor: std::printf("%s: tensor %s\n", name.c_str(), v.as_tensor().describe().c_str()); return;
    case Value::Kind::dtensor: std::printf("%s: %s\n", name.c_str(), v.as_dtensor_node()->describe().c_str()); return;
    case Value::Kind::sharded_tensor:
      std::printf("%s: %s\n", name.c_str(), v.as_sharded_tensor_node()->describe().c_str());
      return;
    case Value::Kind::dict:
      for (const auto& [k, item] : v.as_dict().entries()) show_value(item, child(dict_key_str(k)));
      return;
    case Value::Kind::list:
      for (std::size_t i = 0; i < v.as_list().items.size(); ++i)
        show_value(v.as_list().items[i], fmt::format("{}[{}]", name, i));
      return;
    case Value::Kind::tuple:
      for (std::size_t i = 0; i < v.as_tuple().items().size(); ++i) {
        show_value(v.as_tuple().items()[i], fmt::format("{}[{}]", name, i));
      }
      return;
    case Value::Kind::object:
      std::printf("%s: object %s%s\n", name.c_str(), v.as_object().type_name().c_str(),
                  v.as_object().frozen() ? " (frozen)" : "");
      for (const auto& [field, item] : v.as_object().fields()) show_value(item, child(field));
      return;
    case Value::Kind::integer: std::printf("%s: int %lld\n", name.c_str(), static_cast<long long>(v.as_int())); return;
    case Value::Kind::floating: std::printf("%s: float %.17g\n", name.c_str(), v.as_double()); return;
    case Value::Kind::string: std::printf("%s: string '%s'\n", name.c_str(), v.as_string().c_str()); return;
    default: std::printf("%s: %s\n", name.c_str(), std::string(value_kind_name(v.kind())).c_str()); return;
  }
}

int show(const std::string& file) {
  try {
    replicate::ReplicaInfo info;
    const Value tree = replicate::load_replica(file, &info);
    std::printf("# %s: the state dict of %s kept by %s (format %u.%u, %s of tensor data)\n", file.c_str(),
                rank_text(info.source_rank).c_str(), rank_text(info.holder_rank).c_str(), info.version_major,
                info.version_minor, size_text(info.payload_bytes).c_str());
    show_value(tree, "");
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: BAD (%s): %s\n", file.c_str(), std::string(error_code_name(e.code())).c_str(), e.what());
    return 1;
  }
}

int write_sample(const std::string& file) {
  const Tensor weight = Tensor::random({64, 32}, DType::float32, 1);
  const Value sd = Value::dict({{"layer1.weight", weight},
                                {"layer1.weight_t", weight.transpose(0, 1)},
                                {"layer1.bias", Tensor::random({64}, DType::bfloat16, 2)},
                                {"optimizer", Value::dict({{"step", Value(1000)}, {"lr", Value(3e-4)}})},
                                {"config", Value::object("TrainConfig", {{"name", Value("sample")}}, true)}});
  try {
    const std::uint64_t bytes = replicate::write_replica(file, replicate::pack_state_dict(sd), {1, 0, true});
    std::printf("%s: wrote a sample replica (%s)\n", file.c_str(), size_text(bytes).c_str());
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", file.c_str(), e.what());
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "stagekit-replica: verify and show replica files written by stagekit's ReplicationStager "
      "(format: reference/replicate/FORMAT.md).\nExit status: 0 when every file is valid, 1 when one is "
      "not (or cannot be written), 2 on bad usage."};
  app.require_subcommand(1);
  std::vector<std::string> files;
  auto* verify_cmd = app.add_subcommand("verify",
                                        "Verify every byte of each file (header, manifest, checksums, "
                                        "padding, size); one line per file");
  verify_cmd->add_option("FILE", files, "Replica files")->required()->check(CLI::ExistingFile);
  std::string file;
  auto* show_cmd = app.add_subcommand("show", "Verify a file, then list its state dict: path, kind, dtype, shape");
  show_cmd->add_option("FILE", file, "Replica file")->required()->check(CLI::ExistingFile);
  std::string out;
  auto* sample_cmd = app.add_subcommand("write-sample", "Write a small valid replica (to try the tool)");
  sample_cmd->add_option("FILE", out, "Where to write it (atomically)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is a success; any other parse error is bad usage
  }
  if (*verify_cmd) return verify(files);
  if (*show_cmd) return show(file);
  return write_sample(out);
}
