// manifest_format.cpp — writing and checking the manifest header and its storage table.
#include "manifest_format.h"

#include <fmt/format.h>

#include "stagekit/replicate/packed_state_dict.h"

namespace stagekit::replicate::detail {

std::string version_problem(std::uint16_t major, std::uint16_t minor) {
  if (major != kFormatMajor)
    return fmt::format("format version {}.{}, this reader reads {}.x", major, minor, kFormatMajor);
  if (minor > kFormatMinor) {
    return fmt::format("format version {}.{} is newer than this reader's {}.{}", major, minor, kFormatMajor,
                       kFormatMinor);
  }
  return {};
}

void write_manifest_header(ByteWriter& out, std::span<const std::uint64_t> storage_sizes) {
  out.u32(kManifestMagic);
  out.u16(kFormatMajor);
  out.u16(kFormatMinor);
  out.u64(storage_sizes.size());
  for (std::uint64_t size : storage_sizes) out.u64(size);
}

std::vector<std::uint64_t> read_manifest_header(ByteReader& in) {
  const std::uint32_t magic = in.u32("the manifest magic");
  if (magic != kManifestMagic) in.fail_at(0, fmt::format("bad magic {:#010x}: not a stagekit manifest", magic));
  const std::uint16_t major = in.u16("the major version");
  const std::uint16_t minor = in.u16("the minor version");
  if (const std::string problem = version_problem(major, minor); !problem.empty()) in.fail_at(4, problem);
  const std::uint64_t count = in.count("storage count", sizeof(std::uint64_t));
  std::vector<std::uint64_t> sizes(count);
  for (auto& size : sizes) size = in.u64("a storage size");
  return sizes;
}

}  // namespace stagekit::replicate::detail
