// ConnectOrOffline: the running ferryd, or a read-only one started for this call
// (client/offline.h). The probes it shares with DescribeUnanswered are in offline_probe.cc.
#include "client/offline.h"

#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "client/common.h"

namespace ferry::client {
namespace {

// The fd the read-only ferryd finds its end of the socketpair on (--offline-fd).
constexpr int kChildFd = 3;
constexpr std::chrono::milliseconds kLockPoll{20};

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string DirOfSelf() {
  char buf[4096];
  const ssize_t n = ::readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  std::string path(buf, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string() : path.substr(0, slash);
}

// $FERRY_FERRYD (as is), beside this ferry, FERRY_INSTALL_BINDIR, then PATH. False with
// *error naming every place looked at.
bool FindFerryd(std::string* path, std::string* error) {
  if (const char* env = std::getenv("FERRY_FERRYD"); env && *env) {
    if (IsExecutableFile(env)) {
      *path = env;
      return true;
    }
    *error = "FERRY_FERRYD=" + std::string(env) + " is not an executable file";
    return false;
  }
  std::vector<std::string> tried;
  if (const std::string dir = DirOfSelf(); !dir.empty()) tried.push_back(dir + "/ferryd");
  tried.push_back(std::string(FERRY_INSTALL_BINDIR) + "/ferryd");
  for (const std::string& candidate : tried) {
    if (IsExecutableFile(candidate)) {
      *path = candidate;
      return true;
    }
  }
  if (const char* env_path = std::getenv("PATH"); env_path && *env_path) {
    std::string_view rest(env_path);
    while (!rest.empty()) {
      const size_t colon = rest.find(':');
      std::string dir(rest.substr(0, colon));
      rest = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
      if (dir.empty() || dir[0] != '/') continue;  // never a relative PATH entry
      if (IsExecutableFile(dir + "/ferryd")) {
        *path = dir + "/ferryd";
        return true;
      }
    }
  }
  std::string where;
  for (const std::string& t : tried) where += t + ", ";
  *error = "no ferryd found to read the state directory without the daemon (looked at " + where +
           "and PATH); install ferryd or set FERRY_FERRYD to its path";
  return false;
}

// Starts `ferryd` on one end of a socketpair and hands *conn the other. False with *error.
bool StartOffline(Connection* conn, const std::string& ferryd, const std::string& state_dir,
                  const std::string& config, std::string* error) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    *error = std::string("socketpair: ") + std::strerror(errno);
    return false;
  }
  int report[2];  // CLOEXEC pipe: EOF means exec worked, else the child writes its errno
  if (::pipe2(report, O_CLOEXEC) != 0) {
    *error = std::string("pipe: ") + std::strerror(errno);
    ::close(sv[0]);
    ::close(sv[1]);
    return false;
  }
  std::vector<std::string> args = {ferryd,         "--serve-offline",
                                   "--offline-fd", std::to_string(kChildFd),
                                   "--state-dir",  state_dir};
  if (!config.empty()) {
    args.emplace_back("--config");
    args.push_back(config);
  }
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);                // the client died before prctl
    int ok = ::dup2(sv[1], kChildFd) == kChildFd ? 0 : -1;  // dup2 clears FD_CLOEXEC
    if (ok == 0 && sv[1] == kChildFd) ok = ::fcntl(kChildFd, F_SETFD, 0);
    const int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (ok == 0 && null_fd > 0) ok = ::dup2(null_fd, 0) == 0 ? 0 : -1;
    if (ok == 0 && null_fd == 0) ok = ::fcntl(0, F_SETFD, 0);  // stdin was closed
    if (ok == 0) ok = ::dup2(2, 1) == 1 ? 0 : -1;              // never on our stdout, which is data
    if (ok == 0) ::execv(ferryd.c_str(), argv.data());
    const int err = errno;
    [[maybe_unused]] ssize_t n = ::write(report[1], &err, sizeof err);
    ::_exit(127);
  }
  const int fork_errno = errno;
  ::close(sv[1]);
  ::close(report[1]);
  if (pid < 0) {
    ::close(sv[0]);
    ::close(report[0]);
    *error = std::string("fork: ") + std::strerror(fork_errno);
    return false;
  }
  int child_errno = 0;
  ssize_t got;
  do {
    got = ::read(report[0], &child_errno, sizeof child_errno);
  } while (got < 0 && errno == EINTR);
  ::close(report[0]);
  conn->Adopt(sv[0], pid);  // reaps the child, whether exec worked or not
  if (got == static_cast<ssize_t>(sizeof child_errno)) {
    *error = "cannot run " + ferryd + ": " + std::strerror(child_errno);
    return false;
  }
  return true;
}

}  // namespace

Reach ConnectOrOffline(Connection* conn, const GlobalOptions& global, const std::string& socket,
                       Clock::time_point deadline, bool allow_offline, std::string* error) {
  std::string connect_error;
  if (conn->Connect(socket, deadline, &connect_error)) return Reach::kDaemon;
  int err = conn->connect_errno();
  if (err == EAGAIN) {
    *error = DescribeUnanswered(global, socket);
    return Reach::kNotAnswering;
  }
  if (err != ENOENT && err != ECONNREFUSED) {
    *error = "ferryd is not running (no answer on " + socket + ": " + connect_error + ")";
    return Reach::kFailed;
  }
  const std::string state_dir = ResolveStateDir(global);
  // A holder of the state lock without a listening socket is a ferryd starting (or one whose
  // socket is elsewhere): give it until the deadline; if it goes away, read offline.
  while (StateLockHolder(state_dir) >= 0) {
    if (Clock::now() >= deadline) {
      *error = DescribeUnanswered(global, socket);
      return Reach::kNotAnswering;
    }
    std::this_thread::sleep_for(kLockPoll);
    if (conn->Connect(socket, deadline, &connect_error)) return Reach::kDaemon;
    err = conn->connect_errno();
    if (err != ENOENT && err != ECONNREFUSED) {
      *error = "ferryd is not running (no answer on " + socket + ": " + connect_error + ")";
      return Reach::kFailed;
    }
  }
  if (!allow_offline) {
    *error = "ferryd is not running (no answer on " + socket + ": " + connect_error + ")";
    return Reach::kFailed;
  }
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) != 0) {
    *error = errno == ENOENT ? "nothing recorded yet: " + state_dir + " does not exist"
                             : "cannot read " + state_dir + ": " + std::strerror(errno);
    return Reach::kFailed;
  }
  std::string ferryd;
  if (!FindFerryd(&ferryd, error)) {
    *error = "ferryd is not running, and " + *error;
    return Reach::kFailed;
  }
  if (!StartOffline(conn, ferryd, state_dir, global.config, error)) return Reach::kFailed;
  return Reach::kOffline;
}

std::string DescribeUnanswered(const GlobalOptions& global, const std::string& socket) {
  return DescribeUnansweredIn(ResolveStateDir(global), socket);
}

}  // namespace ferry::client
