// stagekit/core/cuda.h — the slice of the CUDA runtime stagekit uses, callable from any build.
//
// Everything here compiles with or without the CUDA toolkit. availability() says whether CUDA can be
// used right now and, if not, why (built without CUDA; or cudaGetDeviceCount failed, e.g. error 35
// "CUDA driver version is insufficient" on a machine without a GPU driver, which means "no GPU").
// Every other function throws Unsupported (carrying that reason) when CUDA is not available, and
// Error with the failing call and CUDA's error name/string when a call fails.
//
// Streams: each thread has a "current stream" (default: the legacy default stream). Producers of
// device data work on it; the stager orders its own copy stream after it.
#pragma once

#include <cstddef>
#include <string>

namespace stagekit::cuda {

struct Availability {
  bool compiled = false;   // built with CUDA support
  bool available = false;  // at least one device usable now
  int device_count = 0;
  int runtime_version = 0;  // e.g. 13000; 0 if unknown
  int driver_version = 0;   // 0 if no driver
  std::string reason;       // why not available (empty when available)
};

[[nodiscard]] const Availability& availability();  // probed once, then cached
[[nodiscard]] inline bool available() { return availability().available; }
// "none" or "runtime 13.0, driver 13.0, 1 device(s): NVIDIA H100 ..."
[[nodiscard]] std::string describe();

using StreamHandle = void*;  // cudaStream_t
using EventHandle = void*;   // cudaEvent_t

[[nodiscard]] StreamHandle current_stream() noexcept;
void set_current_stream(StreamHandle stream) noexcept;

// Makes `stream` the current stream for a scope.
class StreamGuard {
 public:
  explicit StreamGuard(StreamHandle stream) noexcept : previous_(current_stream()) { set_current_stream(stream); }
  ~StreamGuard() { set_current_stream(previous_); }
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  StreamHandle previous_;
};

// An owned non-blocking stream on one device.
class Stream {
 public:
  explicit Stream(int device = 0);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  [[nodiscard]] StreamHandle handle() const noexcept { return stream_; }
  [[nodiscard]] int device() const noexcept { return device_; }
  void synchronize() const;

 private:
  StreamHandle stream_ = nullptr;
  int device_ = 0;
};

// An owned event (timing disabled unless asked).
class Event {
 public:
  explicit Event(bool timing = false);
  ~Event();
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  void record(StreamHandle stream);
  void wait_on(StreamHandle stream) const;  // make `stream` wait for this event
  void synchronize() const;
  [[nodiscard]] bool query() const;  // true when completed
  [[nodiscard]] float elapsed_ms_since(const Event& start) const;
  [[nodiscard]] EventHandle handle() const noexcept { return event_; }

 private:
  EventHandle event_ = nullptr;
};

void set_device(int device);
[[nodiscard]] int current_device();
void memcpy_sync(void* dst, const void* src, std::size_t nbytes);  // any direction (UVA)
void memcpy_async(void* dst, const void* src, std::size_t nbytes, StreamHandle stream);
// Many copies in one call (cudaMemcpyBatchAsync where the runtime and driver have it, else one
// cudaMemcpyAsync each), in stream order on `stream`.
void memcpy_batch_async(void* const* dsts, const void* const* srcs, const std::size_t* sizes, std::size_t count,
                        StreamHandle stream);
void memset_sync(void* dst, int value, std::size_t nbytes);
void stream_synchronize(StreamHandle stream);
// Queues a host function on `stream` (cudaLaunchHostFunc): the stream's later work waits until it
// returns. `fn` must make no CUDA call.
void launch_host_func(StreamHandle stream, void (*fn)(void*), void* data);
void device_synchronize();

[[nodiscard]] void* device_malloc(int device, std::size_t nbytes);
void device_free(void* ptr) noexcept;
[[nodiscard]] void* host_alloc(std::size_t nbytes);  // cudaHostAlloc, portable
void host_free(void* ptr) noexcept;
void host_register(void* ptr, std::size_t nbytes);  // cudaHostRegister, portable
void host_unregister(void* ptr) noexcept;

enum class PointerKind { unregistered_host, registered_host, device, managed };
// Independent query of what the driver knows about `ptr` (cudaPointerGetAttributes).
[[nodiscard]] PointerKind pointer_kind(const void* ptr);

}  // namespace stagekit::cuda
