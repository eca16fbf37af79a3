#include "daemon/base/status.h"

#include <cstring>

namespace ferry {

Status Status::FromErrno(const std::string& what, int err) {
  return Status(Code::kIOError, what + ": " + std::strerror(err));
}

std::string Status::ToString() const {
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "not found: " + message_;
    case Code::kCorruption:
      return "corruption: " + message_;
    case Code::kIOError:
      return "I/O error: " + message_;
    case Code::kInvalidArgument:
      return "invalid argument: " + message_;
  }
  return message_;
}

}  // namespace ferry
