// systemd integration through libsystemd: socket activation (sd_listen_fds) and service
// notifications (sd_notify). Every call is a cheap no-op when ferryd does not run under
// systemd (no LISTEN_FDS, no NOTIFY_SOCKET).
//
// Thread: the io thread (sd_notify is thread-safe, but we only call it from there).
#pragma once

#include <chrono>
#include <string>

#include "daemon/base/status.h"

namespace ferry::systemd {

// Looks for a listening AF_UNIX stream socket passed by systemd. Returns its fd in *fd, or
// -1 when none was passed. An fd of the wrong kind, or bound to another path than
// `expected_path` (when not empty), is an error: we never serve a socket we did not ask for.
// Unsets LISTEN_FDS/LISTEN_PID so children do not inherit them.
Status TakeListenSocket(const std::string& expected_path, int* fd, std::string* bound_path);

// The watchdog interval systemd asked for (WATCHDOG_USEC for our pid), or zero.
std::chrono::microseconds WatchdogInterval();

// True when NOTIFY_SOCKET is set.
bool NotifyEnabled();

void NotifyReady(const std::string& status);
void NotifyStatus(const std::string& status);
void NotifyWatchdog();
void NotifyReloading();
void NotifyStopping();

}  // namespace ferry::systemd
