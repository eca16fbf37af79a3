// DaemonParts: every long-lived component of a running ferryd, owned in one place so the app/
// pieces (daemon start/stop order, status report, reload, journal repair) can reach what
// they need. Plain data: Daemon (daemon.cc) creates the parts in dependency order and stops
// them in reverse; the members are declared so that destruction runs in a safe order too
// (the state lock is released after the journal; the dedupe window outlives the importer).
//
// Thread: the io thread owns every member. Consumer threads (store, sinks, tails, query) see
// only `progress` and `consumers` (atomics; docs/architecture.md lists them), and the sync
// thread only reaches the io thread by net::post.
#pragma once

#include <chrono>
#include <memory>

#include "daemon/app/reload.h"
#include "daemon/app/sink_set.h"
#include "daemon/app/state_lock.h"
#include "daemon/archive/worker.h"
#include "daemon/base/asio.h"
#include "daemon/config/config.h"
#include "daemon/ingest/dedupe_window.h"
#include "daemon/ingest/server.h"
#include "daemon/ingest/spool_importer.h"
#include "daemon/ingest/tail_server.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/journal/publisher.h"
#include "daemon/journal/retention.h"
#include "daemon/redact/redact.h"
#include "daemon/store/query.h"
#include "daemon/store/writer.h"
#include "daemon/systemd/notifier.h"

namespace ferry {

struct DaemonParts {
  DaemonParts(Config c, ConfigSource src) : config(std::move(c)), source(std::move(src)) {}
  DaemonParts(const DaemonParts&) = delete;
  DaemonParts& operator=(const DaemonParts&) = delete;

  Config config;                             // the running configuration
  const ConfigSource source;                 // where SIGHUP reads it again
  ConfigHealth config_health;                // whether that file loaded (app/reload.h)
  std::unique_ptr<StateDirLock> state_lock;  // declared before the journal: released after it
  net::io_context io{1};
  std::unique_ptr<Journal> journal;
  RecoveryReport recovery;  // what Journal::Open found (status "journal.recovery")
  std::unique_ptr<JournalCommitter> committer;
  std::unique_ptr<IngestServer> server;
  std::unique_ptr<DedupeWindow> dedupe;  // before the importer: it must outlive it
  std::unique_ptr<SpoolImporter> importer;
  // Shared with consumer threads (store writer, sinks, tail); outlives them.
  JournalProgress progress;
  ConsumerRegistry consumers;
  std::unique_ptr<SystemdNotifier> notifier;
  // The transcript archive (docs/archive.md): the inbox and the worker are declared before the
  // store, which posts to the worker and drains the inbox, so they outlive the store thread.
  TranscriptInbox transcript_inbox;
  std::unique_ptr<ArchiveWorker> archive;  // archive thread; stopped after the store
  std::unique_ptr<StoreWriter> store;      // store thread; joined after progress.Stop()
  std::unique_ptr<StoreQuery> query;       // query thread; stopped on SIGTERM/SIGINT
  std::unique_ptr<Retention> retention;
  std::unique_ptr<JournalPublisher> publisher;  // after the committer and retention it uses
  std::unique_ptr<TailServer> tails;
  ConsumerRegistry::Slot* test_hold = nullptr;  // [journal] test_hold_consumer
  std::shared_ptr<const Redactor> redactor;     // the running [redact] rules
  std::unique_ptr<SinkSet> sinks;
  const std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  bool stopping = false;  // SIGINT/SIGTERM seen: timers do not re-arm
};

}  // namespace ferry
