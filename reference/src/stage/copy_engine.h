// Internal: executes the storage copies of one stage. Host sources are copied by the calling thread
// or, when large, split by bytes across a thread pool; CUDA sources are copied with cudaMemcpyAsync
// on the engine's own stream per device, ordered after the caller's current stream.
// A CopyPlan's keep_alive storages (sources and buffers of a non-blocking stage) live until the
// copies complete; a blocking stage's storages are kept alive by its caller and its result.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "stagekit/core/cuda.h"
#include "stagekit/core/storage.h"
#include "thread_pool.h"

namespace stagekit::detail {

struct HostCopy {
  std::byte* dst;
  const std::byte* src;
  std::size_t n;
};

struct DeviceCopy {
  std::byte* dst;  // host memory
  const std::byte* src;
  std::size_t n;
  int device;
};

struct CopyPlan {
  std::vector<HostCopy> host;
  std::vector<std::size_t> host_starts;  // byte position of each host copy in their concatenation
  std::size_t host_bytes = 0;
  std::vector<DeviceCopy> device;
  std::vector<Storage> keep_alive;

  void add(const Storage& source, const Storage& buffer, bool keep_alive_until_done);
  void append(CopyPlan&& other);
};

class CopyOperation {
 public:
  // Blocks until every copy is done; rethrows the first copy error (every call).
  void wait();
  [[nodiscard]] bool ready();

 private:
  friend class CopyEngine;
  void part_done(std::exception_ptr error) noexcept;

  CopyPlan plan_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::size_t parts_pending_ = 0;
  std::exception_ptr error_;
  std::vector<std::unique_ptr<cuda::Event>> device_done_;
  bool device_synced_ = false;
};

class CopyEngine {
 public:
  CopyEngine(std::size_t threads, std::size_t parallel_min_bytes);
  CopyEngine(const CopyEngine&) = delete;
  CopyEngine& operator=(const CopyEngine&) = delete;

  // Runs fn(0) .. fn(parts - 1) on the pool and the calling thread; returns when all are done.
  // `fn` must not throw; parts <= threads().
  void parallel_for(std::size_t parts, const std::function<void(std::size_t)>& fn);

  // Starts the copies. With `blocking` the call returns after they are all done (errors thrown).
  std::shared_ptr<CopyOperation> launch(CopyPlan plan, bool blocking);
  [[nodiscard]] std::size_t threads() const noexcept { return threads_; }

 private:
  static void copy_range(const CopyPlan& plan, std::size_t begin, std::size_t end) noexcept;
  void queue_device_copies(CopyOperation& op);
  cuda::StreamHandle stream_for(int device);

  std::size_t threads_;
  std::size_t parallel_min_bytes_;
  std::unique_ptr<ThreadPool> pool_;
  std::map<int, std::unique_ptr<cuda::Stream>> streams_;
};

}  // namespace stagekit::detail
