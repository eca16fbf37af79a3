#include "daemon/app/client_errors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ferry {
namespace {

// The name client/client_errors.h writes (kClientErrorLogName).
constexpr const char* kLogName = "client-errors.log";
constexpr size_t kMaxRead = 256 * 1024;

}  // namespace

ClientErrorLog::ClientErrorLog(std::string state_dir)
    : path_(std::move(state_dir) + "/" + kLogName) {}

void ClientErrorLog::Refresh(const std::string& file, FileState* state) {
  struct stat st {};
  if (::lstat(file.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    *state = {};
    return;
  }
  const int64_t mtime_ns =
      static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  if (st.st_dev == state->dev && st.st_ino == state->ino && st.st_size == state->size &&
      mtime_ns == state->mtime_ns) {
    return;
  }
  *state = {};
  const int fd = ::open(file.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return;
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
    ::close(fd);
    return;
  }
  std::string text;
  char buf[16384];
  ssize_t n;
  while (text.size() < kMaxRead && (n = ::read(fd, buf, sizeof buf)) > 0) {
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  state->dev = st.st_dev;
  state->ino = st.st_ino;
  state->size = st.st_size;
  state->mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  const size_t end = text.rfind('\n');
  if (end == std::string::npos) return;  // no complete line yet
  for (size_t i = 0; i <= end; ++i) state->lines += text[i] == '\n';
  const size_t prev = end == 0 ? std::string::npos : text.rfind('\n', end - 1);
  const size_t begin = prev == std::string::npos ? 0 : prev + 1;
  state->last = text.substr(begin, end - begin);
}

const ClientErrorLog::Summary& ClientErrorLog::Read() {
  Refresh(path_, &current_);
  Refresh(path_ + ".1", &previous_);
  summary_.count = current_.lines + previous_.lines;
  summary_.last = current_.last.empty() ? previous_.last : current_.last;
  const size_t space = summary_.last.find(' ');
  summary_.last_time = space == std::string::npos ? std::string() : summary_.last.substr(0, space);
  summary_.last_what = space == std::string::npos ? summary_.last : summary_.last.substr(space + 1);
  return summary_;
}

}  // namespace ferry
