#include "client/self_exe.h"

#include <unistd.h>

#include <string_view>

namespace ferry::client {

std::string SelfExePath() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0 || static_cast<size_t>(n) >= sizeof buf - 1) return "ferry";
  const std::string path(buf, static_cast<size_t>(n));
  constexpr std::string_view kDeleted = " (deleted)";
  if (path.front() != '/' || path.find_first_of("\"$`\\'\n") != std::string::npos ||
      (path.size() > kDeleted.size() && path.ends_with(kDeleted))) {
    return "ferry";
  }
  return path;
}

}  // namespace ferry::client
