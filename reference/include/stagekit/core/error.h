// stagekit/core/error.h — the exception hierarchy of stagekit.
//
// Every error the reference (or an implementation under test) raises is a stagekit::Error with an
// ErrorCode. Codes follow the canonical status codes: invalid_argument (bad input from the caller),
// unsupported (a feature or leaf kind that is not implemented), resource_exhausted (memory,
// page-locking, shared memory), communication, timeout, io, corruption, internal (a broken invariant).
//
// Invariants:
//   * what() is the full message: "<path>: <detail>" when the error is tied to a state-dict path,
//     otherwise just "<detail>". path() and detail() give the parts.
//   * with_path() returns a copy of the same dynamic type with the path filled in (if it was empty),
//     so an allocator error can be re-raised naming the state-dict entry that needed the memory.
#pragma once

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace stagekit {

enum class ErrorCode {
  invalid_argument,
  unsupported,
  resource_exhausted,
  communication,
  timeout,
  io,
  corruption,
  internal,
};

[[nodiscard]] std::string_view error_code_name(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, std::string detail, std::string path = {});

  [[nodiscard]] ErrorCode code() const noexcept { return code_; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }
  [[nodiscard]] const std::string& detail() const noexcept { return detail_; }

  // A copy of this error (same dynamic type) naming `path`, unless it already names one.
  [[nodiscard]] virtual std::unique_ptr<Error> with_path(std::string path) const;
  [[noreturn]] virtual void rethrow() const;

 private:
  ErrorCode code_;
  std::string detail_;
  std::string path_;
};

#define STAGEKIT_DECLARE_ERROR(Name, code_value)                                                   \
  class Name : public Error {                                                                      \
   public:                                                                                         \
    explicit Name(std::string detail, std::string path = {})                                       \
        : Error(ErrorCode::code_value, std::move(detail), std::move(path)) {}                      \
    [[nodiscard]] std::unique_ptr<Error> with_path(std::string p) const override {                 \
      return std::make_unique<Name>(detail(), this->path().empty() ? std::move(p) : this->path()); \
    }                                                                                              \
    [[noreturn]] void rethrow() const override { throw *this; }                                    \
  }

STAGEKIT_DECLARE_ERROR(InvalidArgument, invalid_argument);
STAGEKIT_DECLARE_ERROR(Unsupported, unsupported);
STAGEKIT_DECLARE_ERROR(ResourceExhausted, resource_exhausted);
STAGEKIT_DECLARE_ERROR(CommunicationError, communication);
STAGEKIT_DECLARE_ERROR(TimeoutError, timeout);
STAGEKIT_DECLARE_ERROR(IoError, io);
STAGEKIT_DECLARE_ERROR(CorruptionError, corruption);
STAGEKIT_DECLARE_ERROR(InternalError, internal);

#undef STAGEKIT_DECLARE_ERROR

// Throws InvalidArgument(detail) when `condition` is false (caller errors).
inline void check_argument(bool condition, std::string_view detail) {
  if (!condition) throw InvalidArgument(std::string(detail));
}

// Throws InternalError (a broken invariant inside stagekit) when `condition` is false.
void internal_assert(bool condition, std::string_view what, const char* file, int line);
#define STAGEKIT_INTERNAL_ASSERT(cond) ::stagekit::internal_assert((cond), #cond, __FILE__, __LINE__)

}  // namespace stagekit
