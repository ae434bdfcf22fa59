#include "stagekit/core/error.h"

#include <string>

namespace stagekit {

std::string_view error_code_name(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::unsupported: return "unsupported";
    case ErrorCode::resource_exhausted: return "resource_exhausted";
    case ErrorCode::communication: return "communication";
    case ErrorCode::timeout: return "timeout";
    case ErrorCode::io: return "io";
    case ErrorCode::corruption: return "corruption";
    case ErrorCode::internal: return "internal";
  }
  return "unknown";
}

namespace {
std::string compose(const std::string& path, const std::string& detail) {
  return path.empty() ? detail : path + ": " + detail;
}
}  // namespace

Error::Error(ErrorCode code, std::string detail, std::string path)
    : std::runtime_error(compose(path, detail)), code_(code), detail_(std::move(detail)), path_(std::move(path)) {}

std::unique_ptr<Error> Error::with_path(std::string path) const {
  if (!path_.empty()) path = path_;
  return std::make_unique<Error>(code_, detail_, std::move(path));
}

void Error::rethrow() const { throw *this; }

void internal_assert(bool condition, std::string_view what, const char* file, int line) {
  if (condition) return;
  throw InternalError("internal invariant violated: " + std::string(what) + " at " + file + ":" + std::to_string(line));
}

}  // namespace stagekit
