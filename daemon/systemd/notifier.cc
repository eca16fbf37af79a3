#include "daemon/systemd/notifier.h"

#include <spdlog/spdlog.h>

#include "daemon/systemd/glue.h"

namespace ferry {

SystemdNotifier::SystemdNotifier(net::io_context& io, Hooks hooks,
                                 std::chrono::milliseconds status_period)
    : hooks_(std::move(hooks)),
      status_period_(status_period),
      watchdog_interval_(systemd::WatchdogInterval()),
      enabled_(systemd::NotifyEnabled()),
      status_timer_(io),
      watchdog_timer_(io) {}

void SystemdNotifier::Ready() {
  if (!enabled_) return;
  last_status_ = hooks_.status_line();
  systemd::NotifyReady(last_status_);
  ScheduleStatus();
  if (watchdog_interval_.count() > 0) {
    spdlog::info("systemd watchdog: {} ms; pinging every {} ms while the journal is healthy",
                 watchdog_interval_.count() / 1000, watchdog_interval_.count() / 2000);
    ScheduleWatchdog();
  }
}

void SystemdNotifier::Reloading() {
  if (enabled_) systemd::NotifyReloading();
}

void SystemdNotifier::Reloaded() {
  if (!enabled_) return;
  last_status_ = hooks_.status_line();
  systemd::NotifyReady(last_status_);
}

void SystemdNotifier::Stopping() {
  stopping_ = true;
  status_timer_.cancel();
  watchdog_timer_.cancel();
  if (enabled_) systemd::NotifyStopping();
}

void SystemdNotifier::ScheduleStatus() {
  status_timer_.expires_after(status_period_);
  status_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    SendStatus(/*force=*/false);
    ScheduleStatus();
  });
}

void SystemdNotifier::SendStatus(bool force) {
  std::string line = hooks_.status_line();
  if (!force && line == last_status_) return;  // systemd keeps the last one
  last_status_ = std::move(line);
  systemd::NotifyStatus(last_status_);
}

void SystemdNotifier::ScheduleWatchdog() {
  watchdog_timer_.expires_after(watchdog_interval_ / 2);
  watchdog_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    std::string problem = hooks_.liveness_problem(watchdog_interval_);
    if (problem.empty()) {
      if (!last_problem_.empty()) spdlog::info("watchdog: healthy again; pinging systemd");
      last_problem_.clear();
      systemd::NotifyWatchdog();
    } else if (problem != last_problem_) {
      spdlog::error("watchdog: not pinging systemd, which will restart ferryd: {}", problem);
      last_problem_ = std::move(problem);
      SendStatus(/*force=*/true);
    }
    ScheduleWatchdog();
  });
}

}  // namespace ferry
