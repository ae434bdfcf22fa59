// The CUDA runtime wrapper of stagekit/core/cuda.h. With STAGEKIT_HAVE_CUDA it calls libcudart;
// without it every call reports that stagekit was built without CUDA.
#include <string>

#include "stagekit/config.h"
#include "stagekit/core/cuda.h"
#include "stagekit/core/error.h"

#if STAGEKIT_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

namespace stagekit::cuda {
namespace {

thread_local StreamHandle t_current_stream = nullptr;

#if STAGEKIT_HAVE_CUDA

std::string error_text(cudaError_t err) {
  return std::string(cudaGetErrorName(err)) + " (" + std::to_string(static_cast<int>(err)) +
         "): " + cudaGetErrorString(err);
}

void check(cudaError_t err, const char* call) {
  if (err == cudaSuccess) return;
  if (err == cudaErrorMemoryAllocation) {
    throw ResourceExhausted(std::string(call) + " failed: " + error_text(err));
  }
  throw Error(ErrorCode::internal, std::string(call) + " failed: " + error_text(err));
}

#define STAGEKIT_CUDA_CALL(expr) check((expr), #expr)

Availability probe() {
  Availability a;
  a.compiled = true;
  cudaRuntimeGetVersion(&a.runtime_version);
  cudaDriverGetVersion(&a.driver_version);
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error state
    a.reason = "no usable CUDA device: cudaGetDeviceCount returned " + error_text(err);
    return a;
  }
  if (count == 0) {
    a.reason = "no CUDA device present (cudaGetDeviceCount returned 0)";
    return a;
  }
  a.available = true;
  a.device_count = count;
  return a;
}

void require() {
  const auto& a = availability();
  if (!a.available) throw Unsupported(a.reason);
}

#else

Availability probe() {
  Availability a;
  a.reason = "stagekit was built without CUDA (STAGEKIT_WITH_CUDA=OFF or no CUDA toolkit found)";
  return a;
}

[[noreturn]] void require() { throw Unsupported(availability().reason); }

#endif

}  // namespace

const Availability& availability() {
  static const Availability a = probe();
  return a;
}

StreamHandle current_stream() noexcept { return t_current_stream; }
void set_current_stream(StreamHandle stream) noexcept { t_current_stream = stream; }

#if STAGEKIT_HAVE_CUDA

std::string describe() {
  const auto& a = availability();
  auto version = [](int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); };
  if (!a.available) return "none (" + a.reason + ")";
  std::string out = "runtime " + version(a.runtime_version) + ", driver " + version(a.driver_version) + ", " +
                    std::to_string(a.device_count) + " device(s)";
  for (int i = 0; i < a.device_count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) == cudaSuccess) {
      out += (i == 0 ? ": " : ", ") + std::string(prop.name) + " (sm_" + std::to_string(prop.major) +
             std::to_string(prop.minor) + ")";
    }
  }
  return out;
}

static cudaStream_t as_stream(StreamHandle s) { return static_cast<cudaStream_t>(s); }
static cudaEvent_t as_event(EventHandle e) { return static_cast<cudaEvent_t>(e); }

Stream::Stream(int device) : device_(device) {
  require();
  STAGEKIT_CUDA_CALL(cudaSetDevice(device));
  cudaStream_t s = nullptr;
  STAGEKIT_CUDA_CALL(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  stream_ = s;
}
Stream::~Stream() {
  if (stream_ != nullptr) cudaStreamDestroy(as_stream(stream_));
}
void Stream::synchronize() const { STAGEKIT_CUDA_CALL(cudaStreamSynchronize(as_stream(stream_))); }

Event::Event(bool timing) {
  require();
  cudaEvent_t e = nullptr;
  STAGEKIT_CUDA_CALL(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming));
  event_ = e;
}
Event::~Event() {
  if (event_ != nullptr) cudaEventDestroy(as_event(event_));
}
void Event::record(StreamHandle stream) { STAGEKIT_CUDA_CALL(cudaEventRecord(as_event(event_), as_stream(stream))); }
void Event::wait_on(StreamHandle stream) const {
  STAGEKIT_CUDA_CALL(cudaStreamWaitEvent(as_stream(stream), as_event(event_), 0));
}
void Event::synchronize() const { STAGEKIT_CUDA_CALL(cudaEventSynchronize(as_event(event_))); }
bool Event::query() const {
  const cudaError_t err = cudaEventQuery(as_event(event_));
  if (err == cudaErrorNotReady) return false;
  STAGEKIT_CUDA_CALL(err);
  return true;
}
float Event::elapsed_ms_since(const Event& start) const {
  float ms = 0;
  STAGEKIT_CUDA_CALL(cudaEventElapsedTime(&ms, as_event(start.event_), as_event(event_)));
  return ms;
}

void set_device(int device) {
  require();
  STAGEKIT_CUDA_CALL(cudaSetDevice(device));
}
int current_device() {
  require();
  int device = 0;
  STAGEKIT_CUDA_CALL(cudaGetDevice(&device));
  return device;
}
void memcpy_sync(void* dst, const void* src, std::size_t nbytes) {
  require();
  STAGEKIT_CUDA_CALL(cudaMemcpy(dst, src, nbytes, cudaMemcpyDefault));
}
void memcpy_async(void* dst, const void* src, std::size_t nbytes, StreamHandle stream) {
  require();
  STAGEKIT_CUDA_CALL(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, as_stream(stream)));
}
void memcpy_batch_async(void* const* dsts, const void* const* srcs, const std::size_t* sizes, std::size_t count,
                        StreamHandle stream) {
  require();
  if (count == 0) return;
#if CUDART_VERSION >= 12080
  cudaMemcpyAttributes attrs{};
  attrs.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
  std::size_t attrs_index = 0;
  const cudaError_t err =
      cudaMemcpyBatchAsync(const_cast<void**>(dsts), const_cast<const void**>(srcs), const_cast<std::size_t*>(sizes),
                           count, &attrs, &attrs_index, 1, as_stream(stream));
  if (err == cudaSuccess) return;
  if (err != cudaErrorNotSupported && err != cudaErrorInvalidValue) STAGEKIT_CUDA_CALL(err);
  cudaGetLastError();  // not available with this driver: copy one by one
#endif
  for (std::size_t i = 0; i < count; ++i) {
    STAGEKIT_CUDA_CALL(cudaMemcpyAsync(dsts[i], srcs[i], sizes[i], cudaMemcpyDefault, as_stream(stream)));
  }
}
void memset_sync(void* dst, int value, std::size_t nbytes) {
  require();
  STAGEKIT_CUDA_CALL(cudaMemset(dst, value, nbytes));
}
void stream_synchronize(StreamHandle stream) {
  require();
  STAGEKIT_CUDA_CALL(cudaStreamSynchronize(as_stream(stream)));
}
void launch_host_func(StreamHandle stream, void (*fn)(void*), void* data) {
  require();
  STAGEKIT_CUDA_CALL(cudaLaunchHostFunc(as_stream(stream), fn, data));
}
void device_synchronize() {
  require();
  STAGEKIT_CUDA_CALL(cudaDeviceSynchronize());
}
void* device_malloc(int device, std::size_t nbytes) {
  require();
  STAGEKIT_CUDA_CALL(cudaSetDevice(device));
  void* p = nullptr;
  STAGEKIT_CUDA_CALL(cudaMalloc(&p, nbytes));
  return p;
}
void device_free(void* ptr) noexcept {
  if (ptr != nullptr) cudaFree(ptr);
}
void* host_alloc(std::size_t nbytes) {
  require();
  void* p = nullptr;
  STAGEKIT_CUDA_CALL(cudaHostAlloc(&p, nbytes, cudaHostAllocPortable));
  return p;
}
void host_free(void* ptr) noexcept {
  if (ptr != nullptr) cudaFreeHost(ptr);
}
void host_register(void* ptr, std::size_t nbytes) {
  require();
  const cudaError_t err = cudaHostRegister(ptr, nbytes, cudaHostRegisterPortable);
  if (err != cudaSuccess) {
    cudaGetLastError();
    throw ResourceExhausted("registering " + std::to_string(nbytes) +
                            " bytes of host memory with the CUDA driver failed: " + error_text(err));
  }
}
void host_unregister(void* ptr) noexcept {
  if (ptr != nullptr && cudaHostUnregister(ptr) != cudaSuccess) cudaGetLastError();
}
PointerKind pointer_kind(const void* ptr) {
  require();
  cudaPointerAttributes attrs{};
  const cudaError_t err = cudaPointerGetAttributes(&attrs, ptr);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return PointerKind::unregistered_host;
  }
  switch (attrs.type) {
    case cudaMemoryTypeHost: return PointerKind::registered_host;
    case cudaMemoryTypeDevice: return PointerKind::device;
    case cudaMemoryTypeManaged: return PointerKind::managed;
    default: return PointerKind::unregistered_host;
  }
}

#else  // !STAGEKIT_HAVE_CUDA

std::string describe() { return "none (" + availability().reason + ")"; }
Stream::Stream(int device) : device_(device) { require(); }
Stream::~Stream() = default;
void Stream::synchronize() const { require(); }
Event::Event(bool) { require(); }
Event::~Event() = default;
void Event::record(StreamHandle) { require(); }
void Event::wait_on(StreamHandle) const { require(); }
void Event::synchronize() const { require(); }
bool Event::query() const { require(); }
float Event::elapsed_ms_since(const Event&) const { require(); }
void set_device(int) { require(); }
int current_device() { require(); }
void memcpy_sync(void*, const void*, std::size_t) { require(); }
void memcpy_async(void*, const void*, std::size_t, StreamHandle) { require(); }
void memcpy_batch_async(void* const*, const void* const*, const std::size_t*, std::size_t, StreamHandle) { require(); }
void memset_sync(void*, int, std::size_t) { require(); }
void stream_synchronize(StreamHandle) { require(); }
void launch_host_func(StreamHandle, void (*)(void*), void*) { require(); }
void device_synchronize() { require(); }
void* device_malloc(int, std::size_t) { require(); }
void device_free(void*) noexcept {}
void* host_alloc(std::size_t) { require(); }
void host_free(void*) noexcept {}
void host_register(void*, std::size_t) { require(); }
void host_unregister(void*) noexcept {}
PointerKind pointer_kind(const void*) { require(); }

#endif

}  // namespace stagekit::cuda
