#include "client/client_errors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>

namespace ferry::client {
namespace {

void MakeDirs(const std::string& path) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    const std::string partial = path.substr(0, pos);
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) return;
  }
}

std::string UtcNow() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  struct tm tm {};
  ::gmtime_r(&ts.tv_sec, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
  return buf;
}

// "zsh[1234]": who ran the hook, so a user can tell which tool's hook is wrong.
std::string Parent() {
  const pid_t ppid = ::getppid();
  std::string comm;
  const int fd = ::open(("/proc/" + std::to_string(ppid) + "/comm").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    char buf[64];
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) comm.assign(buf, static_cast<size_t>(n));
    ::close(fd);
  }
  while (!comm.empty() && (comm.back() == '\n' || comm.back() == ' ')) comm.pop_back();
  return (comm.empty() ? "pid" : comm) + "[" + std::to_string(ppid) + "]";
}

}  // namespace

GlobalOptions ScanGlobalOptions(int argc, char** argv) {
  GlobalOptions opts;
  for (int i = 0; i < argc; ++i) {
    std::string ignored;
    TakeGlobalOption(argc, argv, &i, &opts, &ignored);
  }
  return opts;
}

void RecordClientProblem(const std::string& state_dir, const std::string& what) {
  MakeDirs(state_dir);
  struct stat st {};
  // Only into a state directory of ours that others cannot write to (as the spool requires):
  // never leave a file in a directory someone else controls.
  if (::stat(state_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::getuid() ||
      (st.st_mode & 022) != 0) {
    return;
  }
  const std::string path = state_dir + "/" + kClientErrorLogName;
  if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
      st.st_size >= kClientErrorLogMaxBytes) {
    ::rename(path.c_str(), (path + ".1").c_str());  // a racing writer may rotate too: harmless
  }
  std::string line = UtcNow() + " " + Parent() + ": ";
  const size_t start = line.size();
  line += what.substr(0, 400);
  for (size_t i = start; i < line.size(); ++i) {
    if (static_cast<unsigned char>(line[i]) < 0x20 || line[i] == 0x7f) line[i] = ' ';
  }
  line += '\n';
  const int fd = ::open(path.c_str(),
                        O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0600);
  if (fd < 0) return;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == ::getuid()) {
    // One write of one line with O_APPEND: lines of concurrent hooks never interleave.
    [[maybe_unused]] const ssize_t n = ::write(fd, line.data(), line.size());
  }
  ::close(fd);
}

}  // namespace ferry::client
