// packed_state_dict.cpp — pack_state_dict(), manifest_storage_sizes() and unpack_state_dict(): the
// public entry points over the manifest encoder and decoder.
#include "stagekit/replicate/packed_state_dict.h"

#include "byte_io.h"
#include "manifest_decoder.h"
#include "manifest_encoder.h"
#include "manifest_format.h"

namespace stagekit::replicate {

std::uint64_t PackedStateDict::payload_bytes() const noexcept {
  std::uint64_t total = 0;
  for (const Storage& s : storages) total += s.nbytes();
  return total;
}

PackedStateDict pack_state_dict(const Value& state_dict, const PackOptions& options) {
  return detail::encode_manifest(state_dict, options);
}

std::vector<std::uint64_t> manifest_storage_sizes(std::span<const std::byte> manifest) {
  detail::ByteReader in(manifest, "manifest");
  return detail::read_manifest_header(in);
}

Value unpack_state_dict(std::span<const std::byte> manifest, std::span<const Storage> storages,
                        const UnpackOptions& options) {
  return detail::decode_manifest(manifest, storages, options);
}

}  // namespace stagekit::replicate
