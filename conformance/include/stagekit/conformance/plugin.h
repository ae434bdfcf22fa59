// stagekit/conformance/plugin.h — the run-time route: the versioned C entry point of a plugin.
//
// A plugin is a shared library (`libvendor.so`) that `stagekit-conform --impl path/to/libvendor.so`
// (or STAGEKIT_IMPL=path) loads with dlopen. It exports one C function, named by
// STAGEKIT_PLUGIN_ENTRY_POINT, that returns a pointer to a static `stagekit_plugin` descriptor:
//
//   abi_major, abi_minor   first, and never moved: the runner reads them before anything else;
//   build_tag              "key=value;..." naming the stagekit version, compiler, standard library
//                          and C++ ABI the plugin was compiled with (STAGEKIT_PLUGIN_BUILD_TAG);
//   create                 makes the implementation; returns a status code (abseil canonical codes)
//                          and writes a message on failure — errors cross this boundary as codes;
//   release                destroys what create made (the plugin's own allocator frees it).
//
// Invariants: the runner refuses a plugin whose abi_major differs from its own or whose build tag
// differs in any compared field (the C++ interface behind `create` is only safe with the same
// compiler family, standard library and stagekit version); it then reports every selected case as
// failed with a reason naming each difference, and calls nothing but the entry point. New fields are
// only ever appended, with a minor-version bump; a runner reads no field beyond the plugin's minor.
//
// A C++ plugin writes one line:  STAGEKIT_CONFORMANCE_PLUGIN(my_vendor::make_implementation)
// where the factory returns std::unique_ptr<stagekit::conformance::Implementation>.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "stagekit/config.h"

#define STAGEKIT_PLUGIN_ABI_MAJOR 1
#define STAGEKIT_PLUGIN_ABI_MINOR 0
#define STAGEKIT_PLUGIN_ENTRY_POINT "stagekit_conformance_plugin"

// Status codes, numbered like absl::StatusCode. kUnimplemented means "not supported here".
#define STAGEKIT_PLUGIN_OK 0
#define STAGEKIT_PLUGIN_INVALID_ARGUMENT 3
#define STAGEKIT_PLUGIN_RESOURCE_EXHAUSTED 8
#define STAGEKIT_PLUGIN_FAILED_PRECONDITION 9
#define STAGEKIT_PLUGIN_UNIMPLEMENTED 12
#define STAGEKIT_PLUGIN_INTERNAL 13

#define STAGEKIT_PLUGIN_STRINGIFY_(x) #x
#define STAGEKIT_PLUGIN_STRINGIFY(x) STAGEKIT_PLUGIN_STRINGIFY_(x)

#if defined(__clang__)
#define STAGEKIT_PLUGIN_COMPILER "clang-" STAGEKIT_PLUGIN_STRINGIFY(__clang_major__)
#elif defined(__GNUC__)
#define STAGEKIT_PLUGIN_COMPILER "gcc-" STAGEKIT_PLUGIN_STRINGIFY(__GNUC__)
#else
#define STAGEKIT_PLUGIN_COMPILER "unknown"
#endif

#if defined(__cplusplus)
#include <version>  // defines the standard library's version macros
#endif
#if defined(_GLIBCXX_RELEASE)
#define STAGEKIT_PLUGIN_STDLIB "libstdc++-" STAGEKIT_PLUGIN_STRINGIFY(_GLIBCXX_RELEASE)
#define STAGEKIT_PLUGIN_CXX11_ABI STAGEKIT_PLUGIN_STRINGIFY(_GLIBCXX_USE_CXX11_ABI)
#elif defined(_LIBCPP_VERSION)
#define STAGEKIT_PLUGIN_STDLIB "libc++-" STAGEKIT_PLUGIN_STRINGIFY(_LIBCPP_VERSION)
#define STAGEKIT_PLUGIN_CXX11_ABI "libc++"
#else
#define STAGEKIT_PLUGIN_STDLIB "unknown"
#define STAGEKIT_PLUGIN_CXX11_ABI "unknown"
#endif

// The build tag of the translation unit that expands it. Every field is compared.
#define STAGEKIT_PLUGIN_BUILD_TAG                                                                      \
  "stagekit=" STAGEKIT_VERSION ";compiler=" STAGEKIT_PLUGIN_COMPILER ";stdlib=" STAGEKIT_PLUGIN_STDLIB \
  ";cxx11_abi=" STAGEKIT_PLUGIN_CXX11_ABI

#ifdef __cplusplus
extern "C" {
#endif

// Opaque to C; a stagekit::conformance::Implementation in C++.
typedef struct stagekit_plugin_implementation stagekit_plugin_implementation;

typedef struct stagekit_plugin {
  uint32_t abi_major;  // STAGEKIT_PLUGIN_ABI_MAJOR of the plugin's build; stays first
  uint32_t abi_minor;  // STAGEKIT_PLUGIN_ABI_MINOR of the plugin's build
  const char* build_tag;
  // On success stores the implementation in *out and returns STAGEKIT_PLUGIN_OK; otherwise returns
  // a status code and writes a NUL-terminated message (at most message_size bytes).
  int (*create)(stagekit_plugin_implementation** out, char* message, size_t message_size);
  void (*release)(stagekit_plugin_implementation* implementation);
} stagekit_plugin;

typedef const stagekit_plugin* (*stagekit_plugin_entry_point)(void);

#ifdef __cplusplus
}  // extern "C"

#include <cstring>
#include <exception>
#include <memory>

#include "stagekit/conformance/implementation.h"
#include "stagekit/core/error.h"

namespace stagekit::conformance::plugin_detail {

inline void write_message(char* message, size_t size, const char* text) {
  if (message == nullptr || size == 0) return;
  std::strncpy(message, text, size - 1);
  message[size - 1] = '\0';
}

inline int status_of(const Error& e) {
  switch (e.code()) {
    case ErrorCode::invalid_argument: return STAGEKIT_PLUGIN_INVALID_ARGUMENT;
    case ErrorCode::unsupported: return STAGEKIT_PLUGIN_UNIMPLEMENTED;
    case ErrorCode::resource_exhausted: return STAGEKIT_PLUGIN_RESOURCE_EXHAUSTED;
    default: return STAGEKIT_PLUGIN_INTERNAL;
  }
}

template <typename Factory>
int create(Factory factory, stagekit_plugin_implementation** out, char* message, size_t size) {
  if (out == nullptr) {
    write_message(message, size, "create() called without an output pointer");
    return STAGEKIT_PLUGIN_INVALID_ARGUMENT;
  }
  *out = nullptr;
  try {
    std::unique_ptr<Implementation> impl = factory();
    if (!impl) {
      write_message(message, size, "the plugin's factory returned no implementation");
      return STAGEKIT_PLUGIN_INTERNAL;
    }
    *out = reinterpret_cast<stagekit_plugin_implementation*>(impl.release());
    return STAGEKIT_PLUGIN_OK;
  } catch (const Error& e) {
    write_message(message, size, e.what());
    return status_of(e);
  } catch (const std::exception& e) {
    write_message(message, size, e.what());
    return STAGEKIT_PLUGIN_INTERNAL;
  } catch (...) {
    write_message(message, size, "the plugin's factory threw a non-standard exception");
    return STAGEKIT_PLUGIN_INTERNAL;
  }
}

inline void release(stagekit_plugin_implementation* implementation) {
  delete reinterpret_cast<Implementation*>(implementation);
}

}  // namespace stagekit::conformance::plugin_detail

// Defines the plugin's entry point around `factory` (a callable returning
// std::unique_ptr<stagekit::conformance::Implementation>). Use once per shared library.
#define STAGEKIT_CONFORMANCE_PLUGIN(factory)                                                                   \
  extern "C" __attribute__((visibility("default"))) const stagekit_plugin* stagekit_conformance_plugin(void) { \
    static const stagekit_plugin descriptor = {                                                                \
        STAGEKIT_PLUGIN_ABI_MAJOR, STAGEKIT_PLUGIN_ABI_MINOR, STAGEKIT_PLUGIN_BUILD_TAG,                       \
        [](stagekit_plugin_implementation** out, char* message, size_t size) {                                 \
          return ::stagekit::conformance::plugin_detail::create((factory), out, message, size);                \
        },                                                                                                     \
        &::stagekit::conformance::plugin_detail::release};                                                     \
    return &descriptor;                                                                                        \
  }
#endif  // __cplusplus
