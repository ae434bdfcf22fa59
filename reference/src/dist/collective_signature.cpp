// The agreement check of collective signatures (see collective_signature.h).
#include "collective_signature.h"

#include <fmt/format.h>

#include <string>
#include <utility>
#include <vector>

#include "backend_common.h"
#include "stagekit/core/error.h"

namespace stagekit::dist::detail {
namespace {

// "8 bytes on rank(s) 0, 2; 4 bytes on rank(s) 1"
template <class Describe>
std::string group_by_value(std::span<const Signature> all, Describe describe) {
  std::vector<std::pair<std::string, std::vector<int>>> groups;
  for (std::size_t r = 0; r < all.size(); ++r) {
    std::string value = describe(all[r]);
    auto it = groups.begin();
    while (it != groups.end() && it->first != value) ++it;
    if (it == groups.end()) {
      groups.emplace_back(std::move(value), std::vector<int>{});
      it = groups.end() - 1;
    }
    it->second.push_back(static_cast<int>(r));
  }
  std::string out;
  for (const auto& [value, ranks] : groups) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} on rank(s) {}", value, format_ranks(ranks));
  }
  return out;
}

template <class Field, class Describe>
void require_same(std::span<const Signature> all, std::string_view context, std::string_view op, std::string_view what,
                  Field field, Describe describe) {
  for (const Signature& s : all) {
    if (field(s) != field(all[0])) {
      throw CommunicationError(
          fmt::format("{}: {}: the ranks disagree on the {}: {}", context, op, what, group_by_value(all, describe)));
    }
  }
}

std::string dtype_text(std::int32_t dtype) {
  if (dtype < 0 || static_cast<std::size_t>(dtype) >= kAllDTypes.size()) return fmt::format("dtype #{}", dtype);
  return std::string(dtype_name(static_cast<DType>(dtype)));
}

}  // namespace

std::string_view collective_name(CollectiveKind kind) noexcept {
  switch (kind) {
    case CollectiveKind::broadcast: return "broadcast";
    case CollectiveKind::all_gather: return "all_gather";
    case CollectiveKind::all_gather_v: return "all_gather_v";
    case CollectiveKind::all_reduce: return "all_reduce";
    case CollectiveKind::barrier: return "barrier";
    case CollectiveKind::split: return "split";
    case CollectiveKind::all_gather_into: return "all_gather_into";
    case CollectiveKind::broadcast_many: return "broadcast_many";
  }
  return "unknown collective";
}

Signature make_signature(CollectiveKind kind, std::uint64_t seq, std::size_t nbytes) {
  Signature s;
  s.seq = static_cast<std::int64_t>(seq);
  s.kind = static_cast<std::int32_t>(kind);
  s.nbytes = static_cast<std::int64_t>(nbytes);
  return s;
}

std::int64_t sizes_digest(std::span<const std::size_t> sizes) noexcept {
  std::uint64_t h = 14695981039346656037ULL;
  for (std::size_t n : sizes) {
    for (int b = 0; b < 8; ++b) {
      h ^= (static_cast<std::uint64_t>(n) >> (8 * b)) & 0xffU;
      h *= 1099511628211ULL;
    }
  }
  return static_cast<std::int64_t>(h);
}

Signature broadcast_many_signature(std::span<const std::span<std::byte>> items, int root) {
  std::vector<std::size_t> sizes;
  std::size_t total = 0;
  for (const std::span<std::byte> item : items) {
    sizes.push_back(item.size());
    total += item.size();
  }
  Signature sig = make_signature(CollectiveKind::broadcast_many, 0, total);
  sig.root = root;
  sig.key = sizes_digest(sizes);
  return sig;
}

void check_signatures(std::span<const Signature> all, std::string_view context) {
  if (all.empty()) return;
  auto call_text = [](const Signature& s) {
    return fmt::format("{} (collective #{})", collective_name(static_cast<CollectiveKind>(s.kind)), s.seq);
  };
  for (const Signature& s : all) {
    if (s.kind != all[0].kind || s.seq != all[0].seq) {
      throw CommunicationError(
          fmt::format("{}: the ranks called different collectives: {}", context, group_by_value(all, call_text)));
    }
  }
  const auto kind = static_cast<CollectiveKind>(all[0].kind);
  const std::string op = call_text(all[0]);
  auto bytes = [](const Signature& s) { return s.nbytes; };
  auto bytes_text = [](const Signature& s) { return fmt::format("{} bytes", s.nbytes); };
  switch (kind) {
    case CollectiveKind::broadcast:
      require_same(
          all, context, op, "root", [](const Signature& s) { return s.root; },
          [](const Signature& s) { return fmt::format("root {}", s.root); });
      require_same(all, context, op, "size", bytes, bytes_text);
      break;
    case CollectiveKind::broadcast_many:
      require_same(
          all, context, op, "root", [](const Signature& s) { return s.root; },
          [](const Signature& s) { return fmt::format("root {}", s.root); });
      require_same(
          all, context, op, "list of sizes", [](const Signature& s) { return s.key; },
          [](const Signature& s) {
            return fmt::format("{} bytes, sizes digest {:#x}", s.nbytes, static_cast<std::uint64_t>(s.key));
          });
      break;
    case CollectiveKind::all_gather: require_same(all, context, op, "size", bytes, bytes_text); break;
    case CollectiveKind::all_reduce:
      require_same(
          all, context, op, "dtype", [](const Signature& s) { return s.dtype; },
          [](const Signature& s) { return dtype_text(s.dtype); });
      require_same(
          all, context, op, "reduce op", [](const Signature& s) { return s.reduce_op; },
          [](const Signature& s) { return fmt::format("op {}", s.reduce_op); });
      require_same(all, context, op, "size", bytes, bytes_text);
      break;
    case CollectiveKind::all_gather_into: {
      require_same(
          all, context, op, "list of sizes", [](const Signature& s) { return s.key; },
          [](const Signature& s) { return fmt::format("sizes digest {:#x}", static_cast<std::uint64_t>(s.key)); });
      std::vector<int> off;  // ranks contributing other sizes than the agreed list gives them
      for (std::size_t r = 0; r < all.size(); ++r) {
        if (all[r].color != 1) off.push_back(static_cast<int>(r));
      }
      if (!off.empty()) {
        throw CommunicationError(
            fmt::format("{}: {}: the size of what rank(s) {} contribute differs from the agreed "
                        "list of sizes",
                        context, op, format_ranks(off)));
      }
      break;
    }
    case CollectiveKind::all_gather_v:
    case CollectiveKind::barrier:
    case CollectiveKind::split: break;
  }
}

}  // namespace stagekit::dist::detail
