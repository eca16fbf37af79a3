// Daemon: wires ferryd's parts together and runs them: journal recovery, the sync thread,
// the ingest server on the io thread (which is the caller's thread), signals, status, config
// reload (SIGHUP) and the systemd glue (socket activation, notifications, watchdog).
// Components are started in dependency order and stopped in reverse.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "daemon/config/config.h"

namespace ferry {

class Daemon {
 public:
  // `config` is what LoadEffectiveConfig() made of `source`; SIGHUP loads `source` again.
  Daemon(Config config, ConfigSource source);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGINT/SIGTERM. Returns the process exit code; throws only during start-up.
  // Thread: the caller's, which becomes the io thread.
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
