// RunProgram (doctor.h): fork/exec with pipes, a deadline and SIGKILL past it. `ferry doctor`
// runs `ferryd --check-config` and the installed hook commands through it.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

#include "client/doctor.h"

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

}  // namespace ferry::client
