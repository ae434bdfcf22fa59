#include "copy_engine.h"

#include <algorithm>
#include <cstring>
#include <latch>
#include <memory>

#include "streaming_copy.h"

namespace stagekit::detail {
namespace {
constexpr std::size_t kMinBytesPerPart = std::size_t{1} << 20;
// Device-to-host copies below this size are submitted in batches.
constexpr std::size_t kBatchedCopyMaxBytes = std::size_t{1} << 20;

// Restores the caller's current CUDA device when it goes out of scope.
struct DeviceRestore {
  int device = -1;
  ~DeviceRestore() {
    if (device < 0) return;
    try {
      cuda::set_device(device);
    } catch (...) {  // NOLINT(bugprone-empty-catch): nothing sensible to do in a destructor
    }
  }
};
}  // namespace

void CopyPlan::add(const Storage& source, const Storage& buffer, bool keep_alive_until_done) {
  const std::size_t n = source.nbytes();
  if (n == 0) return;
  auto* dst = static_cast<std::byte*>(buffer.data());
  const auto* src = static_cast<const std::byte*>(source.data());
  if (source.device().is_cpu()) {
    host.push_back({dst, src, n});
    host_starts.push_back(host_bytes);
    host_bytes += n;
  } else {
    device.push_back({dst, src, n, source.device().index});
  }
  if (keep_alive_until_done) {
    keep_alive.push_back(source);
    keep_alive.push_back(buffer);
  }
}

void CopyPlan::append(CopyPlan&& other) {
  host.reserve(host.size() + other.host.size());
  host_starts.reserve(host_starts.size() + other.host.size());
  for (const HostCopy& c : other.host) {
    host.push_back(c);
    host_starts.push_back(host_bytes);
    host_bytes += c.n;
  }
  device.insert(device.end(), other.device.begin(), other.device.end());
  for (Storage& s : other.keep_alive) keep_alive.push_back(std::move(s));
  other = CopyPlan();
}

// ---- CopyOperation -------------------------------------------------------------------------------

void CopyOperation::part_done(std::exception_ptr error) noexcept {
  std::lock_guard lock(mutex_);
  if (error && !error_) error_ = std::move(error);
  if (--parts_pending_ == 0) cv_.notify_all();
}

void CopyOperation::wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return parts_pending_ == 0; });
  if (!device_synced_) {
    try {
      for (auto& e : device_done_) e->synchronize();
    } catch (...) {
      if (!error_) error_ = std::current_exception();
    }
    device_synced_ = true;
    plan_.keep_alive.clear();
  }
  if (error_) std::rethrow_exception(error_);
}

bool CopyOperation::ready() {
  std::lock_guard lock(mutex_);
  if (parts_pending_ != 0) return false;
  if (device_synced_) return true;
  try {
    return std::all_of(device_done_.begin(), device_done_.end(), [](const auto& e) { return e->query(); });
  } catch (...) {
    return true;  // an error is complete too; wait() reports it
  }
}

// ---- CopyEngine ----------------------------------------------------------------------------------

CopyEngine::CopyEngine(std::size_t threads, std::size_t parallel_min_bytes)
    : threads_(std::max<std::size_t>(threads, 1)), parallel_min_bytes_(parallel_min_bytes) {
  if (threads_ > 1) pool_ = std::make_unique<ThreadPool>(threads_);
}

void CopyEngine::parallel_for(std::size_t parts, const std::function<void(std::size_t)>& fn) {
  if (parts <= 1 || !pool_) {
    for (std::size_t p = 0; p < parts; ++p) fn(p);
    return;
  }
  std::latch done(static_cast<std::ptrdiff_t>(parts - 1));
  for (std::size_t p = 1; p < parts; ++p) {
    pool_->submit([&fn, &done, p] {
      fn(p);
      done.count_down();
    });
  }
  fn(0);
  done.wait();
}

cuda::StreamHandle CopyEngine::stream_for(int device) {
  auto& s = streams_[device];
  if (!s) s = std::make_unique<cuda::Stream>(device);
  return s->handle();
}

void CopyEngine::copy_range(const CopyPlan& plan, std::size_t begin, std::size_t end) noexcept {
  const auto& starts = plan.host_starts;
  auto it = std::upper_bound(starts.begin(), starts.end(), begin);
  std::size_t i = static_cast<std::size_t>(it - starts.begin()) - 1;
  std::size_t pos = begin;
  while (pos < end && i < plan.host.size()) {
    const HostCopy& c = plan.host[i];
    const std::size_t local = pos - starts[i];
    const std::size_t n = std::min(c.n - local, end - pos);
    streaming_copy(c.dst + local, c.src + local, n);
    pos += n;
    ++i;
  }
}

void CopyEngine::queue_device_copies(CopyOperation& op) {
  if (op.plan_.device.empty()) return;
  DeviceRestore restore{cuda::current_device()};
  // Per device: large copies one by one, small ones gathered into batches (one call for many).
  struct Batch {
    std::vector<void*> dsts;
    std::vector<const void*> srcs;
    std::vector<std::size_t> sizes;
  };
  std::map<int, Batch> batches;
  std::map<int, bool> ordered;  // devices whose stream already waits for the producer
  auto stream_of = [&](int device) {
    const cuda::StreamHandle stream = stream_for(device);
    cuda::set_device(device);
    if (!ordered[device]) {
      // Order the copies after whatever the producer queued on its current stream.
      cuda::Event produced;
      produced.record(cuda::current_stream());
      produced.wait_on(stream);
      ordered[device] = true;
    }
    return stream;
  };
  for (const DeviceCopy& c : op.plan_.device) {
    if (c.n < kBatchedCopyMaxBytes) {
      Batch& b = batches[c.device];
      b.dsts.push_back(c.dst);
      b.srcs.push_back(c.src);
      b.sizes.push_back(c.n);
    } else {
      cuda::memcpy_async(c.dst, c.src, c.n, stream_of(c.device));
    }
  }
  for (auto& [device, b] : batches) {
    cuda::memcpy_batch_async(b.dsts.data(), b.srcs.data(), b.sizes.data(), b.sizes.size(), stream_of(device));
  }
  for (const auto& [device, unused] : ordered) {
    cuda::set_device(device);  // an event must belong to the device of the stream it is recorded on
    auto done = std::make_unique<cuda::Event>();
    done->record(stream_for(device));
    op.device_done_.push_back(std::move(done));
  }
}

std::shared_ptr<CopyOperation> CopyEngine::launch(CopyPlan plan, bool blocking) {
  auto op = std::make_shared<CopyOperation>();
  op->plan_ = std::move(plan);
  queue_device_copies(*op);

  const std::size_t total = op->plan_.host_bytes;
  const bool parallel = pool_ && total >= parallel_min_bytes_;
  const std::size_t parts = total == 0 ? 0
                            : parallel ? std::clamp<std::size_t>(total / kMinBytesPerPart, 1, threads_)
                                       : 1;
  if (parts == 1 && (blocking || !parallel)) {
    copy_range(op->plan_, 0, total);  // small, or nothing to share: the calling thread copies
  } else if (parts > 0) {
    const std::size_t first_async = blocking ? 1 : 0;  // a blocking caller copies part 0 itself
    op->parts_pending_ = parts - first_async;
    for (std::size_t p = first_async; p < parts; ++p) {
      const std::size_t begin = total * p / parts;
      const std::size_t end = total * (p + 1) / parts;
      pool_->submit([op, begin, end] {
        copy_range(op->plan_, begin, end);
        op->part_done(nullptr);
      });
    }
    if (blocking) copy_range(op->plan_, 0, total / parts);
  }
  if (blocking) op->wait();
  return op;
}

}  // namespace stagekit::detail
