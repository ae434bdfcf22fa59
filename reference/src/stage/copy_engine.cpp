#include "copy_engine.h"

#include <algorithm>
#include <cstring>
#include <memory>

namespace stagekit::detail {
namespace {
constexpr std::size_t kMinBytesPerPart = std::size_t{1} << 20;
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

cuda::StreamHandle CopyEngine::stream_for(int device) {
  auto& s = streams_[device];
  if (!s) s = std::make_unique<cuda::Stream>(device);
  return s->handle();
}

void CopyEngine::copy_range(const std::vector<HostCopy>& copies, const std::vector<std::size_t>& starts,
                            std::size_t begin, std::size_t end) noexcept {
  // starts[i] is the byte position of copies[i] in the concatenation of all copies.
  auto it = std::upper_bound(starts.begin(), starts.end(), begin);
  std::size_t i = static_cast<std::size_t>(it - starts.begin()) - 1;
  std::size_t pos = begin;
  while (pos < end && i < copies.size()) {
    const HostCopy& c = copies[i];
    const std::size_t local = pos - starts[i];
    const std::size_t n = std::min(c.n - local, end - pos);
    std::memcpy(c.dst + local, c.src + local, n);
    pos += n;
    ++i;
  }
}

std::shared_ptr<CopyOperation> CopyEngine::launch(std::vector<CopyJob> jobs, bool blocking) {
  auto op = std::make_shared<CopyOperation>();
  op->jobs_ = std::move(jobs);

  std::vector<HostCopy> host;
  std::vector<std::size_t> starts;
  std::size_t total = 0;
  std::map<int, bool> devices_used;
  // Restores the caller's current CUDA device once the device copies are queued.
  struct DeviceRestore {
    int device = -1;
    ~DeviceRestore() {
      if (device >= 0) {
        try {
          cuda::set_device(device);
        } catch (...) {  // NOLINT(bugprone-empty-catch): nothing sensible to do in a destructor
        }
      }
    }
  } restore;
  for (const CopyJob& job : op->jobs_) {
    const std::size_t n = job.source.nbytes();
    if (n == 0) continue;
    auto* dst = static_cast<std::byte*>(job.destination.data());
    const auto* src = static_cast<const std::byte*>(job.source.data());
    if (job.source.device().is_cpu()) {
      host.push_back({dst, src, n});
      starts.push_back(total);
      total += n;
    } else {
      const int dev = job.source.device().index;
      if (restore.device < 0) restore.device = cuda::current_device();
      const cuda::StreamHandle stream = stream_for(dev);
      cuda::set_device(dev);
      if (!devices_used[dev]) {
        // Order the copies after whatever the producer queued on its current stream.
        cuda::Event produced;
        produced.record(cuda::current_stream());
        produced.wait_on(stream);
        devices_used[dev] = true;
      }
      cuda::memcpy_async(dst, src, n, stream);
    }
  }
  for (const auto& [dev, used] : devices_used) {
    cuda::set_device(dev);  // an event must belong to the device of the stream it is recorded on
    auto done = std::make_unique<cuda::Event>();
    done->record(stream_for(dev));
    op->device_done_.push_back(std::move(done));
  }

  std::size_t parts = 1;
  if (pool_ && total >= parallel_min_bytes_) {
    parts = std::clamp<std::size_t>(total / kMinBytesPerPart, 1, threads_);
  }
  if (total == 0) parts = 0;

  if (parts <= 1 && (blocking || total < parallel_min_bytes_ || !pool_)) {
    if (parts == 1) copy_range(host, starts, 0, total);
  } else {
    auto shared_host = std::make_shared<const std::vector<HostCopy>>(std::move(host));
    auto shared_starts = std::make_shared<const std::vector<std::size_t>>(std::move(starts));
    const std::size_t first_async = blocking ? 1 : 0;
    op->parts_pending_ = parts - first_async;
    for (std::size_t p = first_async; p < parts; ++p) {
      const std::size_t begin = total * p / parts;
      const std::size_t end = total * (p + 1) / parts;
      pool_->submit([op, shared_host, shared_starts, begin, end] {
        copy_range(*shared_host, *shared_starts, begin, end);
        op->part_done(nullptr);
      });
    }
    if (blocking) copy_range(*shared_host, *shared_starts, 0, total / parts);
  }
  if (blocking) op->wait();
  return op;
}

}  // namespace stagekit::detail
