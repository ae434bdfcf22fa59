// packed_message.cpp — the message framing of a packed state dict (packed_message.h): writing the
// preamble and checking it, the body length and the manifest's storage table before anyone
// allocates for the storages.
#include "stagekit/replicate/packed_message.h"

#include <fmt/format.h>

#include <limits>
#include <string>

#include "byte_io.h"
#include "manifest_format.h"
#include "stagekit/core/error.h"

namespace stagekit::replicate {
namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr std::uint32_t kMessageMagic = 0x5752'4b53;  // "SKRW" as little-endian bytes
constexpr std::uint32_t kStatusOk = 0;
constexpr std::uint32_t kStatusError = 1;

struct Preamble {
  std::uint32_t status = kStatusOk;
  std::uint64_t body_bytes = 0;  // the manifest (or the reason) that follows
  std::uint64_t storage_count = 0;
  std::uint64_t payload_bytes = 0;
};

std::vector<std::byte> head_of(const Preamble& p, std::span<const std::byte> body) {
  ByteWriter out;
  out.u32(kMessageMagic);
  out.u16(kFormatMajor);
  out.u16(kFormatMinor);
  out.u32(p.status);
  out.u32(0);  // reserved
  out.u64(p.body_bytes);
  out.u64(p.storage_count);
  out.u64(p.payload_bytes);
  out.raw(body.data(), body.size());
  return std::move(out.bytes());
}

CorruptionError corrupt(std::string_view what, int sender, std::string_view detail) {
  return CorruptionError(fmt::format("{} from rank {}: {}", what, sender, detail));
}

Preamble read_preamble(std::span<const std::byte> head, std::string_view what, int sender) {
  if (head.size() < kPreambleBytes) {
    throw corrupt(
        what, sender,
        fmt::format("a {}-byte message head is shorter than the {}-byte preamble", head.size(), kPreambleBytes));
  }
  ByteReader in(head.first(kPreambleBytes), what);  // every read below is inside the span
  const std::uint32_t magic = in.u32("the magic");
  if (magic != kMessageMagic) throw corrupt(what, sender, fmt::format("bad magic {:#010x}", magic));
  const std::uint16_t major = in.u16("the major version");
  const std::uint16_t minor = in.u16("the minor version");
  if (const std::string problem = detail::version_problem(major, minor); !problem.empty()) {
    throw corrupt(what, sender, problem);
  }
  Preamble p;
  p.status = in.u32("the status");
  if (p.status != kStatusOk && p.status != kStatusError) {
    throw corrupt(what, sender, fmt::format("unknown status {}", p.status));
  }
  if (const std::uint32_t reserved = in.u32("the reserved bytes"); reserved != 0) {
    throw corrupt(what, sender, fmt::format("reserved bytes {:#010x}, expected 0", reserved));
  }
  p.body_bytes = in.u64("the body length");
  p.storage_count = in.u64("the storage count");
  p.payload_bytes = in.u64("the payload bytes");
  if (p.body_bytes > std::numeric_limits<std::size_t>::max() - kPreambleBytes) {
    throw corrupt(what, sender, fmt::format("a body of {} bytes cannot be held", p.body_bytes));
  }
  return p;
}

}  // namespace

std::vector<std::byte> message_head(const PackedStateDict& packed) {
  Preamble p;
  p.body_bytes = packed.manifest.size();
  p.storage_count = packed.storages.size();
  p.payload_bytes = packed.payload_bytes();
  return head_of(p, packed.manifest);
}

std::vector<std::byte> error_message_head(std::string_view reason) {
  Preamble p;
  p.status = kStatusError;
  p.body_bytes = reason.size();
  return head_of(p, std::as_bytes(std::span(reason.data(), reason.size())));
}

std::uint64_t message_body_bytes(std::span<const std::byte> preamble, std::string_view what, int sender) {
  return read_preamble(preamble, what, sender).body_bytes;
}

MessageHead read_message_head(std::span<const std::byte> head, std::string_view what, int sender) {
  const Preamble p = read_preamble(head, what, sender);
  const std::span<const std::byte> body = head.subspan(kPreambleBytes);
  if (p.body_bytes != body.size()) {
    throw corrupt(
        what, sender,
        fmt::format("the preamble announces {} bytes after it but the message has {}", p.body_bytes, body.size()));
  }
  if (p.status == kStatusError) {
    throw CommunicationError(fmt::format("rank {} sent no state dict: {}", sender,
                                         std::string_view(reinterpret_cast<const char*>(body.data()), body.size())));
  }
  MessageHead out;
  out.manifest = body;
  out.storage_sizes = manifest_storage_sizes(body);
  std::uint64_t total = 0;
  bool overflow = false;
  for (const std::uint64_t size : out.storage_sizes) {
    if (size > std::numeric_limits<std::uint64_t>::max() - total) {
      overflow = true;
      break;
    }
    total += size;
  }
  if (overflow || out.storage_sizes.size() != p.storage_count || total != p.payload_bytes) {
    throw corrupt(what, sender,
                  fmt::format("the preamble announces {} storages of {} bytes but the manifest lists {} of {}",
                              p.storage_count, p.payload_bytes, out.storage_sizes.size(),
                              overflow ? std::string("more than 2^64 bytes") : fmt::format("{} bytes", total)));
  }
  return out;
}

}  // namespace stagekit::replicate
