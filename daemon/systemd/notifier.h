// SystemdNotifier: keeps the service manager told how ferryd is doing, over sd_notify:
// READY=1 once start-up is done, STATUS= (a one-line summary) refreshed every status period,
// WATCHDOG=1 at half of WATCHDOG_USEC, RELOADING=1 / READY=1 around a config reload, and
// STOPPING=1 at shutdown. Every call is a no-op when systemd did not ask for it (no
// NOTIFY_SOCKET, no WATCHDOG_USEC for our pid).
//
// The watchdog ping comes from a timer on the io thread, so a ping proves the io loop turns;
// before each ping `liveness_problem` is asked whether the rest is alive (the journal not
// failed, the sync thread not stuck in one fdatasync for longer than the watchdog interval).
// While it reports a problem no ping goes out, and systemd restarts us.
//
// Thread: the io thread only (construction, every method, and both hooks).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "daemon/base/asio.h"

namespace ferry {

class SystemdNotifier {
 public:
  struct Hooks {
    std::function<std::string()> status_line;  // one line, no newline
    // Empty when the daemon is alive; else why it is not (logged once per episode).
    std::function<std::string(std::chrono::microseconds watchdog_interval)> liveness_problem;
  };

  // `io` must outlive the notifier.
  SystemdNotifier(net::io_context& io, Hooks hooks, std::chrono::milliseconds status_period);
  SystemdNotifier(const SystemdNotifier&) = delete;
  SystemdNotifier& operator=(const SystemdNotifier&) = delete;

  // READY=1 with the first STATUS=; starts the status and watchdog timers.
  void Ready();
  void Reloading();
  // READY=1 again after Reloading(), with a fresh STATUS=.
  void Reloaded();
  // STOPPING=1; cancels the timers so they do not hold the io loop open.
  void Stopping();

  std::chrono::microseconds watchdog_interval() const { return watchdog_interval_; }

 private:
  void ScheduleStatus();
  void ScheduleWatchdog();
  void SendStatus(bool force);

  Hooks hooks_;
  const std::chrono::milliseconds status_period_;
  const std::chrono::microseconds watchdog_interval_;
  const bool enabled_;
  net::steady_timer status_timer_;
  net::steady_timer watchdog_timer_;
  std::string last_status_;
  std::string last_problem_;
  bool stopping_ = false;
};

}  // namespace ferry
