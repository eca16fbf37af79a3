// The parts of client/offline.h that only look (the state lock, /proc): in ferry_client_lib so
// that tests/unit/offline_probe_test.cc can call them. Nothing here writes or creates a file.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "client/offline.h"
#include "proto/paths.h"

namespace ferry::client {

long StateLockHolder(const std::string& state_dir) {
  const std::string path = proto::StateLockPath(state_dir);
  // O_RDONLY without O_CREAT: a missing lock file means no ferryd ever ran here, and the
  // probe must not create one.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return -1;
  long holder = -1;
  if (::flock(fd, LOCK_SH | LOCK_NB) == 0) {
    ::flock(fd, LOCK_UN);  // never kept: a ferryd starting now must get its exclusive lock
  } else if (errno == EWOULDBLOCK) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    holder = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
    if (holder < 0) holder = 0;
  }
  ::close(fd);
  return holder;
}

char ProcessState(long pid) {
  if (pid <= 0) return 0;
  const std::string path = "/proc/" + std::to_string(pid) + "/stat";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[512];
  const ssize_t n = ::read(fd, buf, sizeof buf - 1);
  ::close(fd);
  if (n <= 0) return 0;
  // "1234 (comm) T ...": comm may hold spaces and parentheses, so look after the last ')'.
  const std::string text(buf, static_cast<size_t>(n));
  const size_t close = text.rfind(')');
  if (close == std::string::npos || close + 2 >= text.size()) return 0;
  return text[close + 2];
}

std::string DescribeUnansweredIn(const std::string& state_dir, const std::string& socket) {
  const long pid = StateLockHolder(state_dir);
  // No pid, or one that names no process (the holder did not write its own): the socket only.
  const char state = ProcessState(pid);
  if (pid <= 0 || state == 0) return "ferryd is not answering on " + socket;
  const std::string head =
      "ferryd (pid " + std::to_string(pid) + ") is not answering on " + socket + ": ";
  if (state == 'T') return head + "stopped (try: kill -CONT " + std::to_string(pid) + ")";
  if (state == 't') return head + "stopped by a debugger (tracing stop)";
  return head + "busy (running, but no answer in time)";
}

}  // namespace ferry::client
