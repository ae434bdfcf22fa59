// Communicator's tensor helpers, written once over the byte API of every backend.
//
// Tensors must be defined, contiguous and in the memory the backend's byte API takes: host memory
// (device cpu) for the thread and MPI backends, the current CUDA device for NCCL. Before moving data,
// the helpers exchange a small header (dtype and sizes) so that a mismatch is an InvalidArgument
// naming what differs on every rank involved, not a silent reinterpretation of bytes:
//   * send_tensor sends the header then the data (same tag); recv_tensor compares the header with its
//     destination and, on a mismatch, still consumes the data message before throwing;
//   * the collective helpers all-gather the headers first.
#include "stagekit/dist/communicator.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "backend_common.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

namespace stagekit::dist {
namespace {

using Bytes = std::vector<std::byte>;

struct Header {
  DType dtype = DType::uint8;
  IntList sizes;
  friend bool operator==(const Header&, const Header&) = default;
};

bool uses_device_memory(const Communicator& comm) { return comm.backend() == "nccl"; }

void check_tensor(const Communicator& comm, const Tensor& t, std::string_view op) {
  const std::string who = detail::describe_communicator(comm);
  if (!t.defined()) throw InvalidArgument(fmt::format("{}: {}: the tensor is undefined", who, op));
  if (!t.is_contiguous()) {
    throw InvalidArgument(fmt::format("{}: {}: the tensor must be contiguous, got {}", who, op, t.describe()));
  }
  if (uses_device_memory(comm)) {
    const int device = cuda::current_device();
    if (t.device() != Device::cuda(device)) {
      throw InvalidArgument(fmt::format("{}: {}: the tensor must be on the current CUDA device cuda:{}, got {}", who,
                                        op, device, t.describe()));
    }
  } else if (!t.device().is_cpu()) {
    throw InvalidArgument(fmt::format("{}: {}: the {} backend moves host memory; the tensor must be on cpu, got {}",
                                      who, op, comm.backend(), t.describe()));
  }
}

std::span<std::byte> bytes_of(const Tensor& t) {
  return {static_cast<std::byte*>(t.data_ptr()), static_cast<std::size_t>(t.numel()) * t.element_size()};
}

Header header_of(const Tensor& t) { return {t.dtype(), IntList(t.sizes().begin(), t.sizes().end())}; }

std::string header_text(const Header& h) {
  return fmt::format("{}[{}]", dtype_name(h.dtype), fmt::join(h.sizes, ", "));
}

std::string difference(const Header& a, const Header& b) {
  if (a.dtype != b.dtype && a.sizes != b.sizes) return "dtype and sizes differ";
  return a.dtype != b.dtype ? "dtype differs" : "sizes differ";
}

// [dtype][ndim][sizes...] as int64.
Bytes encode(const Header& h) {
  std::vector<std::int64_t> words{static_cast<std::int64_t>(h.dtype), static_cast<std::int64_t>(h.sizes.size())};
  words.insert(words.end(), h.sizes.begin(), h.sizes.end());
  Bytes out(words.size() * sizeof(std::int64_t));
  std::memcpy(out.data(), words.data(), out.size());
  return out;
}

Header decode(const Communicator& comm, const Bytes& bytes, std::string_view op) {
  auto bad = [&] {
    return CommunicationError(
        fmt::format("{}: {}: the peer's message is not a tensor header ({} bytes); was it sent "
                    "with send_tensor?",
                    detail::describe_communicator(comm), op, bytes.size()));
  };
  if (bytes.size() < 2 * sizeof(std::int64_t) || bytes.size() % sizeof(std::int64_t) != 0) throw bad();
  std::vector<std::int64_t> words(bytes.size() / sizeof(std::int64_t));
  std::memcpy(words.data(), bytes.data(), bytes.size());
  if (words[0] < 0 || static_cast<std::size_t>(words[0]) >= kAllDTypes.size() ||
      words[1] != static_cast<std::int64_t>(words.size()) - 2) {
    throw bad();
  }
  return {static_cast<DType>(words[0]), IntList(words.begin() + 2, words.end())};
}

// A copy of host bytes in the memory the backend's byte API takes.
Tensor in_backend_memory(const Communicator& comm, const Bytes& host) {
  Tensor h = Tensor::empty({static_cast<std::int64_t>(host.size())}, DType::uint8);
  if (!host.empty()) std::memcpy(h.data_ptr(), host.data(), host.size());
  if (!uses_device_memory(comm)) return h;
  return h.to(Device::cuda(cuda::current_device()));
}

// Every rank's header, in rank order.
std::vector<Header> gather_headers(Communicator& comm, const Tensor& t, std::string_view op) {
  const Tensor mine = in_backend_memory(comm, encode(header_of(t)));
  std::vector<Header> out;
  for (const Bytes& b : comm.all_gather_v(bytes_of(mine))) out.push_back(decode(comm, b, op));
  return out;
}

// "float32[2, 3] on rank(s) 0, 2; float32[3] on rank(s) 1"
std::string group_headers(const std::vector<Header>& headers) {
  std::vector<std::pair<Header, std::vector<int>>> groups;
  for (std::size_t r = 0; r < headers.size(); ++r) {
    auto it = groups.begin();
    while (it != groups.end() && !(it->first == headers[r])) ++it;
    if (it == groups.end()) {
      groups.emplace_back(headers[r], std::vector<int>{});
      it = groups.end() - 1;
    }
    it->second.push_back(static_cast<int>(r));
  }
  std::string out;
  for (const auto& [h, ranks] : groups) {
    if (!out.empty()) out += "; ";
    out += fmt::format("{} on rank(s) {}", header_text(h), detail::format_ranks(ranks));
  }
  return out;
}

void require_equal_headers(const Communicator& comm, const std::vector<Header>& headers, std::string_view op) {
  for (const Header& h : headers) {
    if (!(h == headers[0])) {
      throw InvalidArgument(fmt::format("{}: {}: the ranks' tensors must have the same dtype and sizes: {}",
                                        detail::describe_communicator(comm), op, group_headers(headers)));
    }
  }
}

}  // namespace

void Communicator::send_tensor(const Tensor& t, int dst, int tag) {
  check_tensor(*this, t, "send_tensor");
  const Tensor header = in_backend_memory(*this, encode(header_of(t)));
  send(bytes_of(header), dst, tag);
  send(bytes_of(t), dst, tag);
}

void Communicator::recv_tensor(const Tensor& t, int src, int tag) {
  check_tensor(*this, t, "recv_tensor");
  const Header theirs = decode(*this, recv_any_size(src, tag), "recv_tensor");
  const Header mine = header_of(t);
  if (!(theirs == mine)) {
    (void)recv_any_size(src, tag);  // the data message: consume it so that the tag stays in step
    throw InvalidArgument(
        fmt::format("{}: recv_tensor from rank {} (tag {}): the sender's tensor is {} but the "
                    "destination is {} ({})",
                    detail::describe_communicator(*this), src, tag, header_text(theirs), header_text(mine),
                    difference(theirs, mine)));
  }
  recv(bytes_of(t), src, tag);
}

void Communicator::broadcast_tensor(const Tensor& t, int root) {
  check_tensor(*this, t, "broadcast_tensor");
  detail::check_root(*this, root, "broadcast_tensor");
  const std::vector<Header> headers = gather_headers(*this, t, "broadcast_tensor");
  const Header& expected = headers[static_cast<std::size_t>(root)];
  std::vector<int> differing;
  for (std::size_t r = 0; r < headers.size(); ++r) {
    if (!(headers[r] == expected)) differing.push_back(static_cast<int>(r));
  }
  if (!differing.empty()) {
    throw InvalidArgument(
        fmt::format("{}: broadcast_tensor from root {} ({}): rank(s) {} have another tensor ({}): {}",
                    detail::describe_communicator(*this), root, header_text(expected), detail::format_ranks(differing),
                    difference(headers[static_cast<std::size_t>(differing[0])], expected), group_headers(headers)));
  }
  broadcast(bytes_of(t), root);
}

Tensor Communicator::all_gather_tensor(const Tensor& local) {
  check_tensor(*this, local, "all_gather_tensor");
  const std::vector<Header> headers = gather_headers(*this, local, "all_gather_tensor");
  require_equal_headers(*this, headers, "all_gather_tensor");
  if (local.dim() == 0) {
    throw InvalidArgument(fmt::format("{}: all_gather_tensor concatenates along dim 0: a 0-dim tensor has none",
                                      detail::describe_communicator(*this)));
  }
  IntList sizes(local.sizes().begin(), local.sizes().end());
  sizes[0] *= size();
  Tensor out = Tensor::empty(std::move(sizes), local.dtype(), local.device());
  all_gather(bytes_of(local), bytes_of(out));
  return out;
}

void Communicator::all_reduce_tensor(const Tensor& t, ReduceOp op) {
  check_tensor(*this, t, "all_reduce_tensor");
  const std::vector<Header> headers = gather_headers(*this, t, "all_reduce_tensor");
  require_equal_headers(*this, headers, "all_reduce_tensor");
  all_reduce(bytes_of(t), t.dtype(), op);
}

void Communicator::all_gather_into(std::span<const std::byte> local, std::span<std::byte> out,
                                   std::span<const std::size_t> sizes, MemoryOwner /*owner*/) {
  detail::check_all_gather_into_sizes(*this, local.size(), out.size(), sizes);
  if (uses_device_memory(*this)) {  // device memory: only the equal-size collective moves it
    const bool equal = std::all_of(sizes.begin(), sizes.end(), [&](std::size_t n) { return n == sizes.front(); });
    if (!equal) {
      throw Unsupported(fmt::format("{}: all_gather_into with unequal sizes is not available on the {} backend",
                                    detail::describe_communicator(*this), backend()));
    }
    all_gather(local, out);
    return;
  }
  // Every rank takes this path whatever it contributes, so that a contribution other than the
  // expected one is found by every rank from what it received.
  const std::vector<Bytes> blocks = all_gather_v(local);
  detail::check_received_sizes(*this, blocks, sizes);
  std::size_t at = 0;
  for (const Bytes& block : blocks) {
    if (!block.empty()) std::memcpy(out.data() + at, block.data(), block.size());
    at += block.size();
  }
}

void Communicator::all_gather_into_many(std::span<const GatherInto> items, MemoryOwner owner) {
  for (const GatherInto& item : items) all_gather_into(item.local, item.out, item.sizes, owner);
}

void Communicator::send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                             std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner /*owner*/) {
  detail::check_peer(*this, peer, "send_recv");
  const auto send_all = [&] {
    for (const std::span<const std::byte> data : sends) send(data, peer, tag);
  };
  const auto recv_all = [&] {
    for (const std::span<std::byte> data : recvs) recv(data, peer, tag);
  };
  if (rank() < peer) {
    send_all();
    recv_all();
  } else {
    recv_all();
    send_all();
  }
}

void Communicator::broadcast_many(std::span<const std::span<std::byte>> items, int root, MemoryOwner /*owner*/) {
  detail::check_root(*this, root, "broadcast_many");
  for (const std::span<std::byte> data : items) broadcast(data, root);
}

}  // namespace stagekit::dist
