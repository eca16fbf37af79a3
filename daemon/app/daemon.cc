#include "daemon/app/daemon.h"

#include <signal.h>

#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "daemon/app/consumer_floor.h"
#include "daemon/app/journal_upkeep.h"
#include "daemon/app/parts.h"
#include "daemon/app/reload.h"
#include "daemon/app/status_report.h"
#include "daemon/base/asio.h"
#include "daemon/journal/reader.h"
#include "daemon/systemd/glue.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// How often STATUS= is refreshed (only sent when the line changed).
constexpr std::chrono::seconds kStatusPeriod{5};

SinkDeps MakeSinkDeps(DaemonParts& p) {
  SinkDeps deps;
  deps.state_dir = p.config.state_dir;
  deps.journal_dir = p.config.state_dir + "/journal";
  deps.progress = &p.progress;
  deps.consumers = &p.consumers;
  deps.meta.host = HostName();
  deps.meta.host_id = HostIdentity();
  deps.meta.version = FERRY_VERSION;
  return deps;
}

}  // namespace

struct Daemon::Impl {
  Impl(Config c, ConfigSource src)
      : parts(std::move(c), std::move(src)),
        signals(parts.io),
        status(parts, parts.io),
        upkeep(parts, parts.io) {
    parts.sinks = std::make_unique<SinkSet>(parts.io, MakeSinkDeps(parts));
  }

  DaemonParts parts;
  net::signal_set signals;
  StatusReport status;
  JournalUpkeep upkeep;
  // The one function every journal flusher calls after a successful flush (the ingest
  // server's written listener and the spool importer): JournalPublisher::OnWritten.
  std::function<void(uint64_t)> on_written;
  int passed_fd = -1;  // the socket systemd passed, or -1

  void OpenJournal();
  void OpenStore();
  void OpenArchive(StoreOptions* sopts);
  void StartJournalThreads();
  void Listen();
  void SetRequestHandlers();
  void StartConsumers();
  void StopConsumers();
  void StartSignalsAndTimers();
  int Stop();

  void OnStatusRequest(const rapidjson::Value& request);
  void OnFlush(const proto::FlushRequest& req, SinkSet::Reply reply);
  void OnQuery(std::string body, SinkSet::Reply reply);
  void OnSignal(const boost::system::error_code& ec, int signo);
};

void Daemon::Impl::OpenJournal() {
  const Config& cfg = parts.config;
  Journal::Options jopts;
  jopts.dir = cfg.state_dir + "/journal";
  jopts.segment_bytes = cfg.segment_bytes;
  jopts.min_next_seq = ConsumerFloor(cfg, &jopts.min_next_seq_source);
  Status s = Journal::Open(jopts, &parts.journal, &parts.recovery);
  if (!s.ok()) throw std::runtime_error("cannot open the journal: " + s.ToString());
  LogRecovery(jopts.dir, parts.recovery);
}

void Daemon::Impl::OpenStore() {
  const Config& cfg = parts.config;
  if (!cfg.store_enabled) {
    spdlog::info("store disabled ([store] enabled = false): no ferry.db, no ferry query");
    return;
  }
  StoreOptions sopts;
  sopts.db_path = cfg.state_dir + "/ferry.db";
  sopts.journal_dir = parts.journal->dir();
  sopts.batch_interval = cfg.store_batch_interval;
  sopts.batch_events = cfg.store_batch_events;
  sopts.session_idle_timeout = cfg.session_idle_timeout;
  sopts.retain_age = cfg.store_retain_age;
  sopts.retain_rows = cfg.store_retain_rows;
  sopts.search = cfg.store_search;
  OpenArchive(&sopts);
  parts.store =
      std::make_unique<StoreWriter>(sopts, parts.progress, parts.consumers.Register("store", 0));
  Status s = parts.store->Open(parts.journal->written_seq());
  if (s.ok()) {
    spdlog::info("store {}: applied up to seq {}", sopts.db_path, parts.store->cursor());
  } else {
    // Ingest does not wait for the store: the journal takes events, and the store thread
    // retries the open with a backoff, then catches up (status shows the store failed).
    spdlog::error("{}; serving ingest without the store and retrying", s.ToString());
  }
  parts.query = std::make_unique<StoreQuery>(
      sopts.db_path, QueryLimits{cfg.query_timeout, cfg.query_max_rows, 3u << 20});
}

// The transcript archive (docs/archive.md) rides on the store: the store thread posts the
// triggers it commits, and inserts the messages the worker hands back through the inbox.
void Daemon::Impl::OpenArchive(StoreOptions* sopts) {
  const Config& cfg = parts.config;
  ArchiveOptions aopts;
  aopts.dir = cfg.state_dir + "/archive";
  aopts.enabled = cfg.archive_enabled;
  aopts.max_bytes = cfg.archive_max_bytes;
  TranscriptInbox* inbox = &parts.transcript_inbox;
  aopts.on_messages = [inbox](std::vector<TranscriptMessage> m) { inbox->Push(std::move(m)); };
  parts.archive = std::make_unique<ArchiveWorker>(std::move(aopts));
  if (!cfg.archive_enabled) {
    spdlog::info("archive disabled ([archive] enabled = false): transcripts are not copied");
    return;
  }
  ArchiveWorker* worker = parts.archive.get();
  sopts->on_transcript = [worker](TranscriptTrigger t) { worker->Post(std::move(t)); };
  sopts->transcript_inbox = inbox;
}

// The sync thread's callbacks, retention, the publisher (which installs the journal's roll
// callback) and the tail server. The sync thread itself starts in Listen().
void Daemon::Impl::StartJournalThreads() {
  const Config& cfg = parts.config;
  DaemonParts& p = parts;
  JournalCommitter::Callbacks callbacks;
  callbacks.on_durable = [&p](uint64_t seq) {
    net::post(p.io, [&p, seq] {
      p.server->OnDurable(seq);
      if (p.importer) p.importer->OnDurable(seq);
      p.publisher->OnDurable(seq);
    });
  };
  callbacks.on_failure = [&p](const Status& st) {
    net::post(p.io, [&p, st] { p.server->OnSyncFailed(st); });
  };
  p.committer = std::make_unique<JournalCommitter>(cfg.fsync, cfg.fsync_interval, callbacks);
  p.retention = std::make_unique<Retention>(*p.journal, p.consumers, cfg.max_bytes,
                                            cfg.state_dir + "/retention.json");
  Status s = p.retention->Load();
  if (!s.ok()) throw std::runtime_error("cannot read the retention counts: " + s.ToString());
  if (!cfg.test_hold_consumer.empty()) {
    p.test_hold = p.consumers.Register(cfg.test_hold_consumer, 0);
  }
  p.publisher = std::make_unique<JournalPublisher>(
      *p.journal, *p.committer, p.progress, *p.retention, cfg.fsync, [&p] { p.sinks->WakeAll(); });
  p.tails = std::make_unique<TailServer>(p.journal->dir(), p.progress);
  // After each flush: the publisher, then the follow tails waiting for the journal to pass an
  // ephemeral event's position.
  on_written = [listener = p.publisher->WrittenListener(), &p](uint64_t seq) {
    listener(seq);
    p.tails->OnWritten();
  };
}

// The ingest server on the socket systemd passed, or bound here; then the sync thread.
void Daemon::Impl::Listen() {
  DaemonParts& p = parts;
  p.server = std::make_unique<IngestServer>(p.io, IngestLimitsFrom(p.config), *p.journal,
                                            *p.committer, [this] { return status.Json(); });
  std::string passed_path;
  // On the defaults for a config error, serve whatever socket systemd passed: the file that
  // would name it could not be read, and refusing would take the socket unit down with us.
  const bool any_path = !p.config_health.ok();
  Status s = systemd::TakeListenSocket(any_path ? std::string() : p.config.socket_path, &passed_fd,
                                       &passed_path);
  if (!s.ok()) throw std::runtime_error("socket activation: " + s.message());
  if (any_path && passed_fd >= 0) p.config.socket_path = passed_path;
  s = passed_fd >= 0 ? p.server->Adopt(passed_fd, passed_path)
                     : p.server->Listen(p.config.socket_path);
  if (!s.ok()) throw std::runtime_error(s.message());
  p.committer->Start(p.journal->active_segment(), p.journal->written_seq());
  p.server->OnDurable(p.journal->written_seq());  // recovery synced everything it kept
  p.publisher->PublishRecovered();
}

void Daemon::Impl::SetRequestHandlers() {
  IngestServer& server = *parts.server;
  // The store and other consumers are woken once the flush's acks are out (see
  // IngestServer::SetWrittenListener); the spool importer's flushes wake them at once.
  server.SetWrittenListener(parts.publisher->WrittenListenerWakingLater(),
                            [this] { parts.publisher->WakeConsumers(); });
  server.SetStatusRequestHook([this](const rapidjson::Value& req) { OnStatusRequest(req); });
  server.SetFlushHandler(
      [this](proto::FlushRequest req, SinkSet::Reply reply) { OnFlush(req, std::move(reply)); });
  server.SetDeadletterHandler([this](proto::DeadletterRequest req, SinkSet::Reply reply) {
    parts.sinks->Deadletter(req, std::move(reply));
  });
  server.SetTailHandler([this](int fd, const proto::TailRequest& req, std::string* error) {
    return parts.tails->Start(fd, req, error);
  });
  server.SetEphemeralHandler([this](std::string_view body, uint64_t after, int64_t received) {
    return parts.tails->Offer(body, after, received);
  });
  server.SetQueryHandler([this](std::string body, SinkSet::Reply reply) {
    OnQuery(std::move(body), std::move(reply));
  });
  if (!parts.archive) return;
  // Answered on the archive thread, between copies; the reply goes back to io.
  server.SetTranscriptHandler([this](std::string body, SinkSet::Reply reply) {
    net::io_context& io = parts.io;
    parts.archive->Read(std::move(body), [&io, reply = std::move(reply)](std::string f) mutable {
      net::post(io,
                [reply = std::move(reply), f = std::move(f)]() mutable { reply(std::move(f)); });
    });
  });
}

// The consumer threads, the dedupe window and the spool importer. Threads run from here on:
// a start-up failure stops them before the exception leaves, or ~StoreWriter would wait
// forever for a progress that never stops (and under systemd the watchdog would kill a ferryd
// that never answers).
void Daemon::Impl::StartConsumers() {
  DaemonParts& p = parts;
  const Config& cfg = p.config;
  Status s = Redactor::Compile(cfg.redact, &p.redactor);
  if (!s.ok()) throw std::runtime_error("redact rules: " + s.ToString());
  try {
    if (p.archive) p.archive->Start();
    if (p.store) p.store->Start();
    if (p.query) p.query->Start();
    if (cfg.redact.local) {
      p.server->SetLocalRedactor(p.redactor);
      spdlog::info("[redact] local = true: events are redacted before the journal");
    }
    for (const SinkConfig& sc : cfg.sinks) {
      p.sinks->Start(sc, p.redactor, p.journal->oldest_seq(), p.journal->written_seq());
    }
    if (cfg.sinks.empty()) spdlog::info("no [[sink]] configured: events stay on this machine");
    // Event ids of the journal's tail, so events spooled by clients that gave up on a late
    // ack are not stored twice (docs/operations.md "Spool").
    p.dedupe = std::make_unique<DedupeWindow>(cfg.dedupe_window);
    s = p.dedupe->Load(p.journal->dir(), p.journal->written_seq());
    if (!s.ok()) spdlog::warn("dedupe window: {}", s.ToString());
    p.server->SetDedupeWindow(p.dedupe.get());
    p.importer = std::make_unique<SpoolImporter>(p.io, cfg.state_dir + "/spool", *p.journal,
                                                 *p.committer, *p.dedupe, on_written);
    if (cfg.redact.local) p.importer->SetLocalRedactor(p.redactor);
    s = p.importer->Start();
    if (!s.ok()) throw std::runtime_error("cannot import the spool: " + s.ToString());
  } catch (...) {
    StopConsumers();
    p.committer->Stop().PermitUncheckedError();
    throw;
  }
  p.importer->OnDurable(p.journal->written_seq());
}

// Consumers finish their last batch and exit; an unfinished POST is resent after a restart.
void Daemon::Impl::StopConsumers() {
  DaemonParts& p = parts;
  p.progress.Stop();
  p.sinks->StopAll();
  if (p.query) p.query->Stop();
  if (p.store) p.store->Join();      // its last batch is committed (or, on failure, rolled back)
  if (p.archive) p.archive->Stop();  // after the store: it copies what the store posted last
  p.sinks->Clear();                  // joins the sink threads
  p.tails->Stop();
}

void Daemon::Impl::StartSignalsAndTimers() {
  signals.add(SIGINT);
  signals.add(SIGTERM);
  signals.add(SIGHUP);
  signals.async_wait(
      [this](const boost::system::error_code& ec, int signo) { OnSignal(ec, signo); });
  status.StartSampling();
  upkeep.Start();
}

void Daemon::Impl::OnStatusRequest(const rapidjson::Value& request) {
  auto ack = request.FindMember("ack_lost");
  if (ack != request.MemberEnd() && ack->value.IsBool() && ack->value.GetBool()) {
    parts.retention->AckLost();
    journal_health::AckDamage();
  }
  auto cursor = request.FindMember("test_consumer_cursor");
  if (parts.test_hold && cursor != request.MemberEnd() && cursor->value.IsUint64()) {
    parts.test_hold->cursor.store(cursor->value.GetUint64());
    parts.publisher->RunRetention();  // so the reply already shows the effect
  }
}

void Daemon::Impl::OnFlush(const proto::FlushRequest& req, SinkSet::Reply reply) {
  SinkSet& sinks = *parts.sinks;
  if (!req.sink.empty() && !sinks.Find(req.sink)) return reply(sinks.UnknownSinkFrame(req.sink));
  const uint64_t target = parts.journal->written_seq();
  parts.publisher->ShipAllWritten();
  sinks.Flush(req, target, std::move(reply));
}

void Daemon::Impl::OnQuery(std::string body, SinkSet::Reply reply) {
  if (!parts.query) {
    reply(proto::EncodeFrame(
        proto::FrameType::kError,
        proto::MakeErrorBody({proto::Errc::kQueryFailed,
                              "the store is disabled ([store] enabled = false in config.toml)"},
                             false)));
    return;
  }
  // `reply` owns the session: it is moved (never copied) into the io thread's handler, so the
  // session's last reference is dropped there, not on the query thread. StoreQuery calls
  // `done` once, on the query thread or, when stopping, on the caller of Stop().
  net::io_context& io = parts.io;
  parts.query->Submit(std::move(body), [&io, reply = std::move(reply)](bool ok, std::string result,
                                                                       proto::Error error) mutable {
    std::string frame =
        ok ? proto::EncodeFrame(proto::FrameType::kQueryResult, result)
           : proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody(error, false));
    net::post(io, [reply = std::move(reply), frame = std::move(frame)]() mutable {
      reply(std::move(frame));
    });
  });
}

void Daemon::Impl::OnSignal(const boost::system::error_code& ec, int signo) {
  if (ec) return;
  if (signo == SIGHUP) {
    if (!parts.stopping) ReloadConfig(parts);
    signals.async_wait([this](const boost::system::error_code& e, int s) { OnSignal(e, s); });
    return;
  }
  spdlog::info("{}: stopping; acking what is in flight", strsignal(signo));
  parts.stopping = true;
  parts.notifier->Stopping();
  status.Stop();
  parts.sinks->FinishFlushWaits();  // a `ferry flush --wait` is answered before the socket closes
  if (parts.importer) parts.importer->Stop();
  // A running query is interrupted now, so its connection gets its answer (shutting_down)
  // within the drain rather than holding the shutdown for the whole drain time.
  if (parts.query) parts.query->Stop();
  upkeep.Stop();
  parts.server->BeginShutdown(std::chrono::seconds(10), [this] {
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
}

// After io.run() returned (the socket drained).
int Daemon::Impl::Stop() {
  Journal& journal = *parts.journal;
  Status s = journal.Flush();
  if (s.ok()) parts.progress.PublishWritten(journal.written_seq());
  if (Status hw = journal.SaveHighWater(); !hw.ok()) {
    spdlog::warn("cannot record the journal's high-water mark: {}", hw.ToString());
  }
  StopConsumers();
  Status sync = parts.committer->Stop();
  if (!s.ok() || !sync.ok() || journal.failed()) {
    spdlog::error("stopped with a failed journal: {}",
                  journal.failed() ? journal.failure().ToString() : sync.ToString());
    return 1;
  }
  spdlog::info("stopped cleanly; journal durable up to seq {}", journal.written_seq());
  return 0;
}

Daemon::Daemon(Config config, ConfigSource source, std::string config_error)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(source))) {
  if (!config_error.empty()) {
    ConfigHealth& health = impl_->parts.config_health;
    health.error = std::move(config_error);
    health.on_defaults = true;
    health.error_time_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  }
}
Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& d = *impl_;
  DaemonParts& p = d.parts;
  ::signal(SIGPIPE, SIG_IGN);
  if (!p.config_health.ok()) {
    spdlog::error(
        "{}; serving on the defaults (no sinks) until the file is fixed and "
        "reloaded; `ferry status` shows this, `ferryd --check-config` checks the file",
        p.config_health.error);
  }
  PrepareStateDir(p.config.state_dir);
  p.state_lock = std::make_unique<StateDirLock>(p.config.state_dir);
  d.OpenJournal();
  d.OpenStore();
  d.StartJournalThreads();
  d.Listen();
  d.SetRequestHandlers();
  d.StartConsumers();
  d.StartSignalsAndTimers();
  p.server->Start();
  spdlog::info("ferryd {} listening on {}{} (state {}, fsync {})", FERRY_VERSION,
               p.config.socket_path, d.passed_fd >= 0 ? " (socket passed by systemd)" : "",
               p.config.state_dir, FsyncPolicyName(p.config.fsync));
  SystemdNotifier::Hooks hooks;
  hooks.status_line = [&d] { return d.status.Line(); };
  hooks.liveness_problem = [&d](std::chrono::microseconds wd) {
    return d.status.LivenessProblem(wd);
  };
  p.notifier = std::make_unique<SystemdNotifier>(p.io, std::move(hooks), kStatusPeriod);
  p.notifier->Ready();  // the journal is recovered and the socket accepts
  p.io.run();
  return d.Stop();
}

}  // namespace ferry
