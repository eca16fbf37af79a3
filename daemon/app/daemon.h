// Daemon: the start and stop order of ferryd's parts (app/parts.h), and nothing else.
//
// Start, in dependency order: the private state directory and its lock (app/state_lock.h);
// journal recovery above the consumers' floor (app/consumer_floor.h); the store writer and query
// thread (store/); the sync thread (journal/committer.h), retention and the publisher
// (journal/publisher.h); the tail server; the ingest socket (taken from systemd or bound);
// the request handlers; the store, query and sink threads (app/sink_set.h); the dedupe window
// and the spool importer; signals, the status sampler (app/status_report.h) and the journal
// timers (app/journal_upkeep.h); then READY=1 (systemd/notifier.h).
// Stop (SIGINT/SIGTERM): open flush waits are answered, the socket drains for at most 10 s
// (acking what is in flight), the journal is flushed and its high-water mark saved, then the
// consumers stop (progress first, so each finishes its last batch), then the sync thread.
// SIGHUP reloads the config (app/reload.h).
#pragma once

#include <memory>
#include <string>

#include "daemon/config/config.h"

namespace ferry {

class Daemon {
 public:
  // `config` is what LoadEffectiveConfig() made of `source`; SIGHUP loads `source` again.
  // With a `config_error` (the file could not be used), `config` is DefaultEffectiveConfig():
  // ferryd serves on it, logs the error and reports it in status until a reload succeeds.
  Daemon(Config config, ConfigSource source, std::string config_error = {});
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGINT/SIGTERM. Returns the process exit code: 0 after a clean stop, 1 when
  // the journal failed. Throws std::runtime_error only during start-up (the state directory,
  // its lock, the journal, retention counts, the socket, redact rules or the spool cannot be
  // used); every thread started before the throw is stopped first.
  // Thread: the caller's, which becomes the io thread.
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ferry
