// DefaultJournalCap (config.h): journal.max_bytes when the config does not set it.
#include <sys/statvfs.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <string>

#include "daemon/config/config.h"

namespace ferry {

uint64_t DefaultJournalCap(const std::string& state_dir) {
  constexpr uint64_t kMax = 1ull << 30, kMin = 1ull << 20;
  std::string dir = state_dir.empty() ? "." : state_dir;
  struct statvfs fs {};
  while (::statvfs(dir.c_str(), &fs) != 0) {  // the state dir may not exist yet
    if (errno != ENOENT || dir == "/" || dir == ".") return kMax;
    const size_t slash = dir.find_last_of('/');
    dir = slash == std::string::npos ? "." : slash == 0 ? "/" : dir.substr(0, slash);
  }
  const uint64_t tenth = static_cast<uint64_t>(fs.f_blocks) * fs.f_frsize / 10;
  return std::clamp(tenth, kMin, kMax);
}

}  // namespace ferry
