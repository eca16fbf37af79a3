// RunProgram (doctor.h): fork/exec with pipes, a deadline and SIGKILL past it. `ferry doctor`
// runs `ferryd --check-config` (DoctorConfig, here too) and the installed hook commands
// through it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "client/doctor.h"
#include "client/self_exe.h"
#include "proto/paths.h"

extern char** environ;

namespace ferry::client {
namespace {

using SteadyClock = std::chrono::steady_clock;

// environ with `env` set over it.
std::vector<std::string> Environment(const std::vector<std::pair<std::string, std::string>>& env) {
  std::vector<std::string> out;
  for (char** e = environ; *e; ++e) {
    const std::string_view kv = *e;
    bool replaced = false;
    for (const auto& [k, v] : env) replaced |= kv.starts_with(k + "=");
    if (!replaced) out.emplace_back(kv);
  }
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

// Over 80 lines: one poll loop feeds stdin and drains stdout/stderr under one deadline.
ProgramRun RunProgram(const std::vector<std::string>& argv,
                      const std::vector<std::pair<std::string, std::string>>& env,
                      std::string_view input, int timeout_ms) {
  ProgramRun r;
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return r;
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0) return r;
  std::vector<std::string> envs = Environment(env);
  std::vector<char*> args, envp;
  for (const auto& s : argv) args.push_back(const_cast<char*>(s.c_str()));
  for (auto& s : envs) envp.push_back(s.data());
  args.push_back(nullptr);
  envp.push_back(nullptr);
  const auto start = SteadyClock::now();
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    ::dup2(err[1], 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execve(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    ::close(err[0]);
    return r;
  }
  r.started = true;
  const auto deadline = start + std::chrono::milliseconds(timeout_ms);
  size_t written = 0;
  int wfd = in[1];
  ::fcntl(wfd, F_SETFL, O_NONBLOCK);
  if (input.empty()) {
    ::close(wfd);
    wfd = -1;
  }
  int open_fds = 2;
  struct pollfd p[3] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}, {wfd, POLLOUT, 0}};
  while (open_fds > 0 || wfd >= 0) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) {
      r.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    p[2].fd = wfd;
    if (::poll(p, 3, static_cast<int>(left.count()) + 1) < 0 && errno != EINTR) break;
    for (int i = 0; i < 2; ++i) {
      if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[16384];
      const ssize_t n = ::read(p[i].fd, buf, sizeof buf);
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        ::close(p[i].fd);
        p[i].fd = -1;
        --open_fds;
      }
    }
    if (wfd >= 0 && (p[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = ::write(wfd, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno == EPIPE) r.stdin_broken = true;
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        ::close(wfd);
        wfd = -1;
      }
    }
  }
  if (wfd >= 0) ::close(wfd);
  for (int i = 0; i < 2; ++i)
    if (p[i].fd >= 0) ::close(p[i].fd);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.ms = std::chrono::duration<double, std::milli>(SteadyClock::now() - start).count();
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

namespace {

std::string Dir(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

bool Executable(const std::string& p) { return ::access(p.c_str(), X_OK) == 0; }

// The ferryd to ask: next to this ferry, else on PATH, else the installed one.
std::string FindFerryd() {
  const std::string self = SelfExePath();
  if (self.front() == '/' && Executable(Dir(self) + "/ferryd")) return Dir(self) + "/ferryd";
  const char* env = std::getenv("PATH");
  std::string path = env ? env : "";
  for (size_t pos = 0; pos <= path.size();) {
    size_t colon = path.find(':', pos);
    if (colon == std::string::npos) colon = path.size();
    const std::string dir = path.substr(pos, colon - pos);
    pos = colon + 1;
    if (!dir.empty() && dir.front() == '/' && Executable(dir + "/ferryd")) return dir + "/ferryd";
  }
  const std::string installed = std::string(FERRY_INSTALL_BINDIR) + "/ferryd";
  return Executable(installed) ? installed : std::string();
}

std::string FirstLine(std::string s) {
  s = s.substr(0, s.find('\n'));
  if (s.starts_with("ferryd: ")) s.erase(0, 8);
  return s;
}

}  // namespace

void DoctorConfig(const GlobalOptions& g, std::vector<DoctorCheck>* out) {
  using Check = DoctorCheck;
  const char* env = std::getenv("FERRY_CONFIG");
  const std::string path = !g.config.empty() ? g.config
                           : env && *env     ? env
                                             : proto::DefaultConfigPath();
  const std::string ferryd = FindFerryd();
  if (ferryd.empty()) {
    out->push_back({Check::kWarn, "config",
                    "not checked: no ferryd next to ferry, on PATH or in " FERRY_INSTALL_BINDIR,
                    "put ferryd on PATH (cmake --install), then ferry doctor again"});
    return;
  }
  std::vector<std::string> argv = {ferryd, "--check-config"};
  if (!g.config.empty()) argv.insert(argv.end(), {"--config", g.config});
  const ProgramRun r = RunProgram(argv, {}, "", 10000);
  const std::string again = ferryd + " --check-config --config " + path;
  if (!r.started || r.timed_out || r.exit_code < 0) {
    out->push_back(
        {Check::kWarn, "config",
         "not checked: " + ferryd + " --check-config " + (r.timed_out ? "hung" : "did not run"),
         again});
  } else if (r.exit_code != 0) {
    out->push_back({Check::kFail, "config", FirstLine(r.err), "edit " + path + ", then " + again});
  } else if (!r.err.empty()) {
    out->push_back({Check::kWarn, "config", FirstLine(r.err), "edit " + path + ", then " + again});
  } else {
    struct stat st {};
    out->push_back({Check::kOk, "config",
                    ::stat(path.c_str(), &st) == 0 ? path + " is valid"
                                                   : "no " + path + ": the defaults apply",
                    ""});
  }
}

}  // namespace ferry::client
