// The NCCL backend (built only with STAGEKIT_HAVE_NCCL): nccl_communicator() and NcclCommunicator.
//
// Bootstrap: over the given host-memory communicator (MPI, or a thread world) every rank first learns
// whether every rank has a usable CUDA device (Unsupported everywhere if not, with the reason from
// stagekit::cuda::availability()); rank 0 then creates the ncclUniqueId and broadcasts it, and each
// rank calls ncclCommInitRankConfig on its current device.
//
// The NCCL communicator is non-blocking (config.blocking = 0), so no NCCL call can hang: a call that
// returns ncclInProgress is polled with ncclCommGetAsyncError. Every operation runs on the
// communicator's own stream, ordered after the caller's current stream (an event), and is waited for
// by polling cudaStreamQuery and ncclCommGetAsyncError until timeout(); at the deadline the
// communicator is aborted (ncclCommAbort, which stops its kernels, so they never touch the caller's
// buffers afterwards) and marked broken. NCCL cannot tell which rank of a collective is missing.
//
// Byte buffers are device memory of the communicator's device, which must be the caller's current
// device. Results that the API returns by value (recv_any_size, all_gather_v) are host copies.
// Point to point: NCCL has no tags. Each send() is a 16-byte header {tag, size} followed by the data;
// recv() checks the header: a different size or tag is a CommunicationError (the message is consumed).
// Messages between two ranks are therefore received in the order they were sent, whatever their tag.
// send_recv moves both directions in two groups, every header each way first, then every payload;
// broadcast_many is one group of ncclBroadcast calls after one signature.
// all_reduce: NCCL types for bool (max = logical or), int8/uint8, int32/uint32, int64/uint64,
// float16, bfloat16, float32, float64, complex (componentwise), and the float8 types on NCCL >= 2.24;
// int16/uint16 are Unsupported (NCCL has no 16-bit integer type).
#include <cuda_runtime_api.h>
#include <fmt/format.h>
#include <nccl.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "backend_common.h"
#include "collective_signature.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"
#include "stagekit/dist/communicator.h"

namespace stagekit::dist {
namespace {

using detail::Clock;
using detail::CollectiveKind;
using detail::Signature;
using Bytes = std::vector<std::byte>;

struct MessageHeader {
  std::int64_t tag = 0;
  std::int64_t nbytes = 0;
};

std::string nccl_text(ncclResult_t r) {
  return fmt::format("{} (ncclResult_t {})", ncclGetErrorString(r), static_cast<int>(r));
}

std::string cuda_text(cudaError_t e) {
  return fmt::format("{} ({}): {}", cudaGetErrorName(e), static_cast<int>(e), cudaGetErrorString(e));
}

bool is_fatal(ncclResult_t r) {
  return r != ncclSuccess && r != ncclInProgress && r != ncclInvalidArgument && r != ncclInvalidUsage;
}

// Polls the communicator's state until it leaves ncclInProgress or the deadline passes (then
// ncclInProgress is returned).
ncclResult_t wait_state(ncclComm_t comm, Clock::time_point deadline) {
  detail::Backoff backoff;
  for (;;) {
    ncclResult_t state = ncclSuccess;
    const ncclResult_t r = ncclCommGetAsyncError(comm, &state);
    if (r != ncclSuccess) return r;
    if (state != ncclInProgress || Clock::now() >= deadline) return state;
    backoff.pause();
  }
}

struct NcclReduce {
  ncclDataType_t type;
  ncclRedOp_t op;
  std::size_t components;  // NCCL elements per dtype element (2 for complex)
};

std::optional<NcclReduce> nccl_reduce(DType dtype) {
  switch (dtype) {
    case DType::bool_: return NcclReduce{ncclUint8, ncclMax, 1};
    case DType::uint8: return NcclReduce{ncclUint8, ncclSum, 1};
    case DType::int8: return NcclReduce{ncclInt8, ncclSum, 1};
    case DType::int32: return NcclReduce{ncclInt32, ncclSum, 1};
    case DType::uint32: return NcclReduce{ncclUint32, ncclSum, 1};
    case DType::int64: return NcclReduce{ncclInt64, ncclSum, 1};
    case DType::uint64: return NcclReduce{ncclUint64, ncclSum, 1};
    case DType::float16: return NcclReduce{ncclFloat16, ncclSum, 1};
    case DType::bfloat16: return NcclReduce{ncclBfloat16, ncclSum, 1};
    case DType::float32: return NcclReduce{ncclFloat32, ncclSum, 1};
    case DType::float64: return NcclReduce{ncclFloat64, ncclSum, 1};
    case DType::complex64: return NcclReduce{ncclFloat32, ncclSum, 2};
    case DType::complex128: return NcclReduce{ncclFloat64, ncclSum, 2};
#if NCCL_VERSION_CODE >= NCCL_VERSION(2, 24, 0)
    case DType::float8_e4m3fn: return NcclReduce{ncclFloat8e4m3, ncclSum, 1};
    case DType::float8_e5m2: return NcclReduce{ncclFloat8e5m2, ncclSum, 1};
#else
    case DType::float8_e4m3fn:
    case DType::float8_e5m2: return std::nullopt;
#endif
    case DType::int16:
    case DType::uint16: return std::nullopt;
  }
  return std::nullopt;
}

// Device memory freed on scope exit.
class DeviceBuffer {
 public:
  DeviceBuffer(int device, std::size_t nbytes)
      : ptr_(nbytes == 0 ? nullptr : static_cast<std::byte*>(cuda::device_malloc(device, nbytes))) {}
  ~DeviceBuffer() { cuda::device_free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  [[nodiscard]] std::byte* get() const noexcept { return ptr_; }

 private:
  std::byte* ptr_;
};

class NcclCommunicator final : public Communicator {
 public:
  NcclCommunicator(ncclComm_t comm, int device, std::chrono::milliseconds timeout)
      : comm_(comm), device_(device), stream_(device) {
    set_timeout(timeout);
    check_call(ncclCommUserRank(comm_, &rank_), "ncclCommUserRank");
    check_call(ncclCommCount(comm_, &size_), "ncclCommCount");
    scratch_ = std::make_unique<DeviceBuffer>(
        device_, 2 * sizeof(MessageHeader) + static_cast<std::size_t>(size_) * sizeof(Signature));
  }

  ~NcclCommunicator() override {
    if (comm_ == nullptr) return;
    // Every operation was waited for, so finalising only flushes NCCL's own state.
    const ncclResult_t r = ncclCommFinalize(comm_);
    const bool finalized =
        (r == ncclSuccess || r == ncclInProgress) && wait_state(comm_, Clock::now() + timeout()) == ncclSuccess;
    if (finalized) {
      ncclCommDestroy(comm_);
    } else {
      ncclCommAbort(comm_);
    }
  }

  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  [[nodiscard]] std::string backend() const override { return "nccl"; }

  void send(std::span<const std::byte> data, int dst, int tag) override {
    const auto start = begin("send");
    detail::check_peer(*this, dst, "send");
    detail::check_tag(*this, tag, "send");
    const MessageHeader header{tag, static_cast<std::int64_t>(data.size())};
    cuda::memcpy_sync(send_header(), &header, sizeof header);
    order_after_caller();
    enqueue(ncclSend(send_header(), sizeof header, ncclUint8, dst, comm_, stream()), "ncclSend", start);
    if (!data.empty()) enqueue(ncclSend(data.data(), data.size(), ncclUint8, dst, comm_, stream()), "ncclSend", start);
    complete(fmt::format("send to rank {} (tag {}, {} bytes)", dst, tag, data.size()),
             fmt::format("rank {} did not receive it", dst), start);
  }

  void recv(std::span<std::byte> data, int src, int tag) override {
    const auto start = begin("recv");
    const MessageHeader header = receive_header(src, tag, "recv", start);
    if (static_cast<std::size_t>(header.nbytes) != data.size()) {
      drain(src, static_cast<std::size_t>(header.nbytes), start);
      throw CommunicationError(
          fmt::format("{}: recv from rank {} (tag {}): expected {} bytes, the message has {} bytes",
                      detail::describe_communicator(*this), src, tag, data.size(), header.nbytes));
    }
    if (data.empty()) return;
    enqueue(ncclRecv(data.data(), data.size(), ncclUint8, src, comm_, stream()), "ncclRecv", start);
    complete(fmt::format("recv from rank {} (tag {}, {} bytes)", src, tag, data.size()),
             fmt::format("rank {} stopped sending", src), start);
  }

  [[nodiscard]] std::vector<std::byte> recv_any_size(int src, int tag) override {
    const auto start = begin("recv_any_size");
    const MessageHeader header = receive_header(src, tag, "recv_any_size", start);
    Bytes out(static_cast<std::size_t>(header.nbytes));
    if (out.empty()) return out;
    DeviceBuffer buffer(device_, out.size());
    enqueue(ncclRecv(buffer.get(), out.size(), ncclUint8, src, comm_, stream()), "ncclRecv", start);
    complete(fmt::format("recv_any_size from rank {} (tag {}, {} bytes)", src, tag, out.size()),
             fmt::format("rank {} stopped sending", src), start);
    cuda::memcpy_sync(out.data(), buffer.get(), out.size());
    return out;
  }

  // Both directions at once, in two groups: first every header each way (so that each rank knows
  // what arrives before any payload moves), then every payload each way. A message whose header
  // names another size or tag than the receive expects is still received, into scratch memory (so
  // that the peer completes), and is then a CommunicationError; the communicator is broken.
  // NCCL moves the caller's memory in place: a timeout aborts the communicator, whose kernels then
  // never touch it again, so `owner` is not needed.
  void send_recv(int peer, std::span<const std::span<const std::byte>> sends,
                 std::span<const std::span<std::byte>> recvs, int tag, MemoryOwner /*owner*/) override {
    const auto start = begin("send_recv");
    detail::check_peer(*this, peer, "send_recv");
    detail::check_tag(*this, tag, "send_recv");
    const std::string what =
        fmt::format("send_recv with rank {} (tag {}: {} message(s) out, {} in)", peer, tag, sends.size(), recvs.size());
    if (sends.empty() && recvs.empty()) return;
    const std::size_t out = sends.size();
    std::vector<MessageHeader> headers(out + recvs.size());
    for (std::size_t i = 0; i < out; ++i) headers[i] = {tag, static_cast<std::int64_t>(sends[i].size())};
    DeviceBuffer device_headers(device_, headers.size() * sizeof(MessageHeader));
    const auto header_at = [&](std::size_t i) { return device_headers.get() + i * sizeof(MessageHeader); };
    if (out > 0) cuda::memcpy_sync(device_headers.get(), headers.data(), out * sizeof(MessageHeader));
    order_after_caller();
    grouped(start, [&] {
      for (std::size_t i = 0; i < out; ++i)
        enqueue(ncclSend(header_at(i), sizeof(MessageHeader), ncclUint8, peer, comm_, stream()), "ncclSend", start);
      for (std::size_t j = 0; j < recvs.size(); ++j)
        enqueue(ncclRecv(header_at(out + j), sizeof(MessageHeader), ncclUint8, peer, comm_, stream()), "ncclRecv",
                start);
    });
    complete(what + ": the headers", fmt::format("rank {} did not take part", peer), start);
    if (!recvs.empty()) cuda::memcpy_sync(headers.data() + out, header_at(out), recvs.size() * sizeof(MessageHeader));

    std::string mismatch;
    std::vector<std::unique_ptr<DeviceBuffer>> scratch;
    grouped(start, [&] {
      for (const std::span<const std::byte> data : sends) {
        if (!data.empty())
          enqueue(ncclSend(data.data(), data.size(), ncclUint8, peer, comm_, stream()), "ncclSend", start);
      }
      for (std::size_t j = 0; j < recvs.size(); ++j) {
        const MessageHeader& h = headers[out + j];
        const auto announced = static_cast<std::size_t>(std::max<std::int64_t>(h.nbytes, 0));
        if (h.tag == tag && announced == recvs[j].size()) {
          if (announced > 0)
            enqueue(ncclRecv(recvs[j].data(), announced, ncclUint8, peer, comm_, stream()), "ncclRecv", start);
          continue;
        }
        if (mismatch.empty()) {
          mismatch = h.tag != tag
                         ? fmt::format("message #{} from rank {} has tag {}, {} was expected", j, peer, h.tag, tag)
                         : fmt::format("message #{} from rank {} has {} bytes, {} were expected", j, peer, h.nbytes,
                                       recvs[j].size());
        }
        if (announced == 0) continue;
        scratch.push_back(std::make_unique<DeviceBuffer>(device_, announced));
        enqueue(ncclRecv(scratch.back()->get(), announced, ncclUint8, peer, comm_, stream()), "ncclRecv", start);
      }
    });
    complete(what, fmt::format("rank {} stopped sending or receiving", peer), start);
    if (!mismatch.empty()) {
      broken_.mark(what + ": " + mismatch);
      throw CommunicationError(fmt::format("{}: {}: {}", detail::describe_communicator(*this), what, mismatch));
    }
  }

  void broadcast(std::span<std::byte> data, int root) override {
    const auto start = begin("broadcast");
    detail::check_root(*this, root, "broadcast");
    Signature sig = detail::make_signature(CollectiveKind::broadcast, 0, data.size());
    sig.root = root;
    (void)exchange(sig, start);
    if (data.empty() || size_ == 1) return;
    order_after_caller();
    enqueue(ncclBroadcast(data.data(), data.data(), data.size(), ncclUint8, root, comm_, stream()), "ncclBroadcast",
            start);
    complete_collective("broadcast", start);
  }

  void all_gather(std::span<const std::byte> local, std::span<std::byte> out) override {
    const auto start = begin("all_gather");
    detail::check_all_gather_sizes(*this, local.size(), out.size());
    (void)exchange(detail::make_signature(CollectiveKind::all_gather, 0, local.size()), start);
    if (local.empty()) return;
    order_after_caller();
    enqueue(ncclAllGather(local.data(), out.data(), local.size(), ncclUint8, comm_, stream()), "ncclAllGather", start);
    complete_collective("all_gather", start);
  }

  // One signature for every item (the root and a digest of the sizes), then one ncclBroadcast per
  // item, all in one group.
  void broadcast_many(std::span<const std::span<std::byte>> items, int root, MemoryOwner /*owner*/) override {
    const auto start = begin("broadcast_many");
    detail::check_root(*this, root, "broadcast_many");
    const Signature sig = detail::broadcast_many_signature(items, root);
    (void)exchange(sig, start);
    if (sig.nbytes == 0 || size_ == 1) return;
    order_after_caller();
    grouped(start, [&] {
      for (const std::span<std::byte> item : items) {
        if (!item.empty()) {
          enqueue(ncclBroadcast(item.data(), item.data(), item.size(), ncclUint8, root, comm_, stream()),
                  "ncclBroadcast", start);
        }
      }
    });
    complete_collective("broadcast_many", start);
  }

  [[nodiscard]] std::vector<std::vector<std::byte>> all_gather_v(std::span<const std::byte> local) override {
    const auto start = begin("all_gather_v");
    const std::vector<Signature> all =
        exchange(detail::make_signature(CollectiveKind::all_gather_v, 0, local.size()), start);
    std::size_t largest = 0;
    for (const Signature& s : all) largest = std::max(largest, static_cast<std::size_t>(s.nbytes));
    std::vector<Bytes> result(all.size());
    if (largest == 0) return result;
    // Every rank contributes `largest` bytes (padded); the padding is dropped on the host.
    DeviceBuffer send(device_, largest);
    DeviceBuffer gathered(device_, largest * all.size());
    order_after_caller();
    if (!local.empty()) {
      check_cuda(cudaMemcpyAsync(send.get(), local.data(), local.size(), cudaMemcpyDeviceToDevice, stream()),
                 "cudaMemcpyAsync");
    }
    enqueue(ncclAllGather(send.get(), gathered.get(), largest, ncclUint8, comm_, stream()), "ncclAllGather", start);
    complete_collective("all_gather_v", start);
    for (std::size_t r = 0; r < all.size(); ++r) {
      result[r].resize(static_cast<std::size_t>(all[r].nbytes));
      if (!result[r].empty()) cuda::memcpy_sync(result[r].data(), gathered.get() + r * largest, result[r].size());
    }
    return result;
  }

  void all_reduce(std::span<std::byte> data, DType dtype, ReduceOp op) override {
    const auto start = begin("all_reduce");
    detail::check_reduce_arguments(*this, data.size(), dtype, op);
    Signature sig = detail::make_signature(CollectiveKind::all_reduce, 0, data.size());
    sig.dtype = static_cast<std::int32_t>(dtype);
    sig.reduce_op = static_cast<std::int32_t>(op);
    (void)exchange(sig, start);
    const auto reduce = nccl_reduce(dtype);
    if (!reduce) {
      throw Unsupported(fmt::format("{}: all_reduce: NCCL has no type for {}", detail::describe_communicator(*this),
                                    dtype_name(dtype)));
    }
    if (data.empty() || size_ == 1) return;
    const std::size_t count = data.size() / element_size(dtype) * reduce->components;
    order_after_caller();
    enqueue(ncclAllReduce(data.data(), data.data(), count, reduce->type, reduce->op, comm_, stream()), "ncclAllReduce",
            start);
    complete_collective("all_reduce", start);
  }

  void barrier() override {
    const auto start = begin("barrier");
    (void)exchange(detail::make_signature(CollectiveKind::barrier, 0), start);
  }

  [[nodiscard]] std::unique_ptr<Communicator> split(int color, int key) override {
    const auto start = begin("split");
    detail::check_color(*this, color);
    Signature sig = detail::make_signature(CollectiveKind::split, 0);
    sig.color = color;
    sig.key = key;
    (void)exchange(sig, start);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclComm_t child = nullptr;
    const ncclResult_t r =
        ncclCommSplit(comm_, color == kUndefinedColor ? NCCL_SPLIT_NOCOLOR : color, key, &child, &config);
    if (r != ncclSuccess && r != ncclInProgress) fail_call(r, "ncclCommSplit");
    const auto deadline = start + timeout();
    ncclResult_t state = wait_state(comm_, deadline);
    if (state == ncclSuccess && child != nullptr) state = wait_state(child, deadline);
    if (state != ncclSuccess) {
      if (child != nullptr) ncclCommAbort(child);
      if (state == ncclInProgress) abort_and_time_out("ncclCommSplit", "a rank did not take part", start);
      fail_call(state, "ncclCommSplit");
    }
    if (child == nullptr) return nullptr;
    return std::make_unique<NcclCommunicator>(child, device_, timeout());
  }

 private:
  [[nodiscard]] cudaStream_t stream() const noexcept { return static_cast<cudaStream_t>(stream_.handle()); }
  [[nodiscard]] std::byte* send_header() const noexcept { return scratch_->get(); }
  [[nodiscard]] std::byte* recv_header() const noexcept { return scratch_->get() + sizeof(MessageHeader); }
  [[nodiscard]] std::byte* signatures() const noexcept { return scratch_->get() + 2 * sizeof(MessageHeader); }

  Clock::time_point begin(std::string_view op) {
    broken_.throw_if_broken(*this, op);
    const int current = cuda::current_device();
    if (current != device_) {
      throw InvalidArgument(
          fmt::format("{}: {}: the current CUDA device is cuda:{}, but this communicator works on "
                      "cuda:{}",
                      detail::describe_communicator(*this), op, current, device_));
    }
    return Clock::now();
  }

  void check_call(ncclResult_t r, std::string_view call) {
    if (r != ncclSuccess) fail_call(r, call);
  }

  void check_cuda(cudaError_t e, std::string_view call) {
    if (e != cudaSuccess)
      throw CommunicationError(
          fmt::format("{}: {} failed: {}", detail::describe_communicator(*this), call, cuda_text(e)));
  }

  // A fatal NCCL error aborts the communicator; invalid arguments/usage leave it usable.
  [[noreturn]] void fail_call(ncclResult_t r, std::string_view call) {
    std::string text = fmt::format("{} failed: {}", call, nccl_text(r));
    if (comm_ != nullptr) {
      if (const char* last = ncclGetLastError(comm_); last != nullptr && *last != '\0')
        text += fmt::format(" ({})", last);
    }
    if (is_fatal(r)) abort(text);
    throw CommunicationError(fmt::format("{}: {}", detail::describe_communicator(*this), text));
  }

  void abort(const std::string& why) {
    broken_.mark(why);
    if (comm_ != nullptr) ncclCommAbort(comm_);
    comm_ = nullptr;
  }

  [[noreturn]] void abort_and_time_out(std::string_view what, std::string_view who, Clock::time_point start) {
    const std::string text = fmt::format("{} timed out after {}: {}; the NCCL communicator was aborted", what,
                                         detail::format_duration(Clock::now() - start), who);
    abort(text);
    throw TimeoutError(fmt::format("{}: {}", detail::describe_communicator(*this), text));
  }

  // Issues an NCCL call's result: ncclInProgress (non-blocking communicator) is polled until ready.
  void enqueue(ncclResult_t r, std::string_view call, Clock::time_point start) {
    if (r == ncclSuccess) return;
    if (r != ncclInProgress) fail_call(r, call);
    const ncclResult_t state = wait_state(comm_, start + timeout());
    if (state == ncclInProgress) abort_and_time_out(call, "NCCL did not accept the operation", start);
    if (state != ncclSuccess) fail_call(state, call);
  }

  // NCCL calls made by `body` as one group (ncclGroupStart/ncclGroupEnd): NCCL launches them
  // together. The group is closed whatever `body` throws.
  template <class Body>
  void grouped(Clock::time_point start, Body&& body) {
    check_call(ncclGroupStart(), "ncclGroupStart");
    try {
      body();
    } catch (...) {
      (void)ncclGroupEnd();
      throw;
    }
    enqueue(ncclGroupEnd(), "ncclGroupEnd", start);
  }

  // The caller produced its buffers on its current stream: this communicator's stream waits for it.
  void order_after_caller() {
    cuda::Event ready;
    ready.record(cuda::current_stream());
    ready.wait_on(stream_.handle());
  }

  // Polls the stream and NCCL's asynchronous error until the enqueued work completed.
  void complete(std::string_view what, std::string_view who, Clock::time_point start) {
    const auto deadline = start + timeout();
    detail::Backoff backoff;
    for (;;) {
      const cudaError_t done = cudaStreamQuery(stream());
      ncclResult_t async = ncclSuccess;
      const ncclResult_t r = ncclCommGetAsyncError(comm_, &async);
      if (r != ncclSuccess) fail_call(r, "ncclCommGetAsyncError");
      if (async != ncclSuccess && async != ncclInProgress) fail_call(async, what);
      if (done == cudaSuccess) return;
      if (done != cudaErrorNotReady) {
        const std::string text = fmt::format("{} failed: cudaStreamQuery returned {}", what, cuda_text(done));
        abort(text);
        throw CommunicationError(fmt::format("{}: {}", detail::describe_communicator(*this), text));
      }
      if (Clock::now() >= deadline) abort_and_time_out(what, who, start);
      backoff.pause();
    }
  }

  void complete_collective(std::string_view name, Clock::time_point start) {
    complete(fmt::format("{} (collective #{})", name, next_seq_ - 1),
             "NCCL cannot tell which rank is missing (a peer gave up, died or called another collective)", start);
  }

  // Signatures of every rank (index = rank): an ncclAllGather of 48 bytes each.
  std::vector<Signature> exchange(Signature sig, Clock::time_point start) {
    const std::uint64_t seq = next_seq_++;
    sig.seq = static_cast<std::int64_t>(seq);
    std::byte* mine = signatures() + static_cast<std::size_t>(rank_) * sizeof(Signature);
    cuda::memcpy_sync(mine, &sig, sizeof sig);
    enqueue(ncclAllGather(mine, signatures(), sizeof sig, ncclUint8, comm_, stream()), "ncclAllGather", start);
    complete(fmt::format("{} (collective #{})", detail::collective_name(static_cast<CollectiveKind>(sig.kind)), seq),
             "NCCL cannot tell which rank did not arrive", start);
    std::vector<Signature> all(static_cast<std::size_t>(size_));
    cuda::memcpy_sync(all.data(), signatures(), all.size() * sizeof(Signature));
    detail::check_signatures(all, detail::describe_communicator(*this));
    return all;
  }

  MessageHeader receive_header(int src, int tag, std::string_view what, Clock::time_point start) {
    detail::check_peer(*this, src, what);
    detail::check_tag(*this, tag, what);
    enqueue(ncclRecv(recv_header(), sizeof(MessageHeader), ncclUint8, src, comm_, stream()), "ncclRecv", start);
    complete(fmt::format("{} from rank {} (tag {})", what, src, tag), fmt::format("rank {} sent nothing", src), start);
    MessageHeader header;
    cuda::memcpy_sync(&header, recv_header(), sizeof header);
    if (header.tag != tag) {
      drain(src, static_cast<std::size_t>(header.nbytes), start);
      throw CommunicationError(fmt::format(
          "{}: {} from rank {}: expected tag {}, but the next message from rank {} has tag {} (NCCL delivers the "
          "messages between two ranks in the order they were sent, whatever their tag)",
          detail::describe_communicator(*this), what, src, tag, src, header.tag));
    }
    return header;
  }

  // Receives and drops the data of a message whose header was consumed.
  void drain(int src, std::size_t nbytes, Clock::time_point start) {
    if (nbytes == 0) return;
    DeviceBuffer scratch(device_, nbytes);
    enqueue(ncclRecv(scratch.get(), nbytes, ncclUint8, src, comm_, stream()), "ncclRecv", start);
    complete(fmt::format("recv from rank {} ({} bytes)", src, nbytes), fmt::format("rank {} stopped sending", src),
             start);
  }

  ncclComm_t comm_;
  int device_;
  cuda::Stream stream_;
  int rank_ = 0;
  int size_ = 1;
  std::unique_ptr<DeviceBuffer> scratch_;
  std::uint64_t next_seq_ = 0;
  detail::BrokenState broken_;
};

Bytes as_bytes(const std::string& s) {
  Bytes out(s.size());
  if (!s.empty()) std::memcpy(out.data(), s.data(), s.size());
  return out;
}

}  // namespace

std::unique_ptr<Communicator> nccl_communicator(Communicator& bootstrap) {
  if (bootstrap.backend() == "nccl") {
    throw InvalidArgument(
        "nccl_communicator: the bootstrap communicator must move host memory (mpi or thread), not nccl");
  }
  // Every rank learns whether every rank can use CUDA, so that they all fail alike.
  const cuda::Availability& availability = cuda::availability();
  const Bytes mine = as_bytes(availability.available ? std::string() : availability.reason);
  const std::vector<Bytes> reasons = bootstrap.all_gather_v(mine);
  std::vector<int> without;
  std::string first_reason;
  for (std::size_t r = 0; r < reasons.size(); ++r) {
    if (reasons[r].empty()) continue;
    without.push_back(static_cast<int>(r));
    if (first_reason.empty()) first_reason.assign(reinterpret_cast<const char*>(reasons[r].data()), reasons[r].size());
  }
  if (!availability.available) throw Unsupported("nccl_communicator: " + availability.reason);
  if (!without.empty()) {
    throw Unsupported(fmt::format("nccl_communicator: rank(s) {} have no usable CUDA device: {}",
                                  detail::format_ranks(without), first_reason));
  }

  const int device = cuda::current_device();
  // Rank 0's unique id, behind a status byte so that a failure there is an error on every rank.
  std::array<std::byte, 1 + sizeof(ncclUniqueId)> message{};
  std::string id_error;
  if (bootstrap.rank() == 0) {
    ncclUniqueId id{};
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r == ncclSuccess) {
      message[0] = std::byte{1};
      std::memcpy(message.data() + 1, &id, sizeof id);
    } else {
      id_error = ": " + nccl_text(r);
    }
  }
  bootstrap.broadcast(message, 0);
  if (message[0] != std::byte{1})
    throw CommunicationError("nccl_communicator: ncclGetUniqueId failed on rank 0" + id_error);
  ncclUniqueId id{};
  std::memcpy(&id, message.data() + 1, sizeof id);

  cuda::set_device(device);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  ncclComm_t comm = nullptr;
  const auto start = Clock::now();
  const ncclResult_t r = ncclCommInitRankConfig(&comm, bootstrap.size(), id, bootstrap.rank(), &config);
  ncclResult_t state = r;
  if (r == ncclInProgress || (r == ncclSuccess && comm != nullptr))
    state = wait_state(comm, start + bootstrap.timeout());
  if (state != ncclSuccess) {
    if (comm != nullptr) ncclCommAbort(comm);
    if (state == ncclInProgress) {
      throw TimeoutError(
          fmt::format("nccl_communicator: ncclCommInitRankConfig timed out after {}: not every rank of "
                      "the bootstrap communicator joined",
                      detail::format_duration(Clock::now() - start)));
    }
    throw CommunicationError("nccl_communicator: ncclCommInitRankConfig failed: " + nccl_text(state));
  }
  return std::make_unique<NcclCommunicator>(comm, device, bootstrap.timeout());
}

}  // namespace stagekit::dist
