#include "daemon/systemd/glue.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

namespace ferry::systemd {

Status TakeListenSocket(const std::string& expected_path, int* fd, std::string* bound_path) {
  *fd = -1;
  const int n = sd_listen_fds(1);
  if (n < 0) return Status::IOError(std::string("sd_listen_fds: ") + std::strerror(-n));
  if (n == 0) return Status::Ok();
  if (n > 1) {
    return Status::InvalidArgument("systemd passed " + std::to_string(n) +
                                   " sockets; ferryd.socket must have exactly one ListenStream");
  }
  const int candidate = SD_LISTEN_FDS_START;
  if (sd_is_socket_unix(candidate, SOCK_STREAM, 1, nullptr, 0) <= 0) {
    return Status::InvalidArgument(
        "the socket systemd passed is not a listening AF_UNIX stream socket");
  }
  struct sockaddr_un addr {};
  socklen_t len = sizeof addr;
  if (::getsockname(candidate, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Status::FromErrno("getsockname on the passed socket", errno);
  }
  const size_t path_len = len > offsetof(sockaddr_un, sun_path)
                              ? ::strnlen(addr.sun_path, len - offsetof(sockaddr_un, sun_path))
                              : 0;
  *bound_path = std::string(addr.sun_path, path_len);
  if (!expected_path.empty() && *bound_path != expected_path) {
    return Status::InvalidArgument("systemd passed a socket bound to " + *bound_path +
                                   " but ferryd is configured for " + expected_path);
  }
  *fd = candidate;
  return Status::Ok();
}

std::chrono::microseconds WatchdogInterval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) <= 0) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<int64_t>(usec));
}

bool NotifyEnabled() {
  const char* s = std::getenv("NOTIFY_SOCKET");
  return s && *s;
}

void NotifyReady(const std::string& status) { sd_notify(0, ("READY=1\nSTATUS=" + status).c_str()); }

void NotifyStatus(const std::string& status) { sd_notify(0, ("STATUS=" + status).c_str()); }

void NotifyWatchdog() { sd_notify(0, "WATCHDOG=1"); }

void NotifyReloading() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const uint64_t usec =
      static_cast<uint64_t>(ts.tv_sec) * 1000000 + static_cast<uint64_t>(ts.tv_nsec) / 1000;
  sd_notify(0, ("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec)).c_str());
}

void NotifyStopping() { sd_notify(0, "STOPPING=1"); }

}  // namespace ferry::systemd
