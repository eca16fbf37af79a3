// Small helpers shared by the spool importer's two files (spool_importer.cc: the io thread's
// side and the import; spool_files.cc: scanning, checking and removing spool files). Internal
// to daemon/ingest. Any thread; no state.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"

namespace ferry::spool {

inline bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// ".<pid>-<rand>.tmp": a spool file its writer has not renamed in (yet).
inline bool IsTmp(const std::string& name) { return name.front() == '.' && EndsWith(name, ".tmp"); }

// read(2) through the seam, retrying EINTR.
inline ssize_t ReadSome(int fd, char* buf, size_t n) {
  for (;;) {
    const ssize_t got = fs::Read(fd, buf, n);
    if (got < 0 && errno == EINTR) continue;
    return got;
  }
}

}  // namespace ferry::spool
