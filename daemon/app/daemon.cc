#include "daemon/app/daemon.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "daemon/base/asio.h"
#include "daemon/base/file_util.h"
#include "daemon/base/logging.h"
#include "daemon/ingest/dedupe_window.h"
#include "daemon/ingest/server.h"
#include "daemon/ingest/spool_importer.h"
#include "daemon/ingest/tail_server.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"
#include "daemon/journal/progress.h"
#include "daemon/journal/reader.h"
#include "daemon/journal/retention.h"
#include "daemon/redact/redact.h"
#include "daemon/sink/encode.h"
#include "daemon/sink/sink.h"
#include "daemon/store/query.h"
#include "daemon/store/schema.h"
#include "daemon/store/writer.h"
#include "daemon/systemd/glue.h"
#include "daemon/systemd/notifier.h"
#include "proto/event.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// Holds an exclusive flock on <state_dir>/ferryd.lock for the life of the daemon, so two
// ferryds never append to one journal (each would hand out the same seqs). The kernel drops
// the lock with the process, even on SIGKILL, so a stale lock file never blocks a restart.
class StateDirLock {
 public:
  explicit StateDirLock(const std::string& dir) {
    const std::string path = dir + "/ferryd.lock";
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
    if (::flock(fd_, LOCK_EX | LOCK_NB) != 0) {
      const int err = errno;
      char buf[32] = {};
      const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
      const long holder = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
      ::close(fd_);
      fd_ = -1;
      if (err != EWOULDBLOCK) {
        throw std::runtime_error("cannot lock " + path + ": " + std::strerror(err));
      }
      throw std::runtime_error(
          "another ferryd" + (holder > 0 ? " (pid " + std::to_string(holder) + ")" : "") +
          " is using the state directory " + dir + "; not starting a second one");
    }
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
      spdlog::warn("cannot record our pid in {}: {}", path, std::strerror(errno));
    }
  }
  ~StateDirLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

IngestLimits LimitsFrom(const Config& cfg) {
  IngestLimits limits;
  limits.max_frame = cfg.max_frame_bytes;
  limits.max_connections = cfg.max_connections;
  limits.idle_timeout = cfg.idle_timeout;
  limits.frame_timeout = cfg.frame_timeout;
  limits.max_batch_events = cfg.max_batch_events;
  return limits;
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "; ") + p;
  return out;
}

// The lowest seq the journal may continue with: one above every seq a consumer has seen
// (ferry.db's cursor; every sink's cursor and in-flight batch under <state>/cursors, read
// only). Recovery never hands out a seq below it (docs/journal-format.md "Recovery").
uint64_t ConsumerFloor(const Config& cfg, std::string* source) {
  uint64_t floor = 1;
  const auto raise = [&](uint64_t seen, const std::string& who) {
    if (seen + 1 > floor) {
      floor = seen + 1;
      *source = who + " has seen seq " + std::to_string(seen);
    }
  };
  if (cfg.store_enabled) {
    const std::string db = cfg.state_dir + "/ferry.db";
    uint64_t cursor = 0;
    std::string error;
    if (store::ReadCursorReadOnly(db, &cursor, &error)) {
      raise(cursor, db);
    } else {
      spdlog::warn(
          "cannot read the cursor of {} before opening the journal ({}); if the "
          "journal lost its tail, seqs ferry.db applied may be handed out again",
          db, error);
    }
  }
  const std::string dir = cfg.state_dir + "/cursors";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (struct dirent* e = ::readdir(d)) {
      const std::string name = e->d_name;
      if (name.empty() || name[0] == '.' || name.find(".tmp") != std::string::npos) continue;
      std::string text;
      if (!ReadWholeFile(dir + "/" + name, &text)) continue;
      rapidjson::Document doc;
      doc.Parse(text.c_str(), text.size());
      if (doc.HasParseError() || !doc.IsObject()) continue;
      for (const char* key : {"cursor", "inflight_last"}) {
        auto it = doc.FindMember(key);
        if (it != doc.MemberEnd() && it->value.IsUint64()) {
          raise(it->value.GetUint64(), dir + "/" + name);
        }
      }
    }
    ::closedir(d);
  }
  return floor;
}

// How often STATUS= is refreshed (only sent when the line changed).
constexpr std::chrono::seconds kStatusPeriod{5};

}  // namespace

struct Daemon::Impl {
  Impl(Config c, ConfigSource src)
      : config(std::move(c)),
        source(std::move(src)),
        signals(io),
        rate_timer(io),
        retention_timer(io),
        flush_timer(io) {}

  Config config;                             // the running configuration
  const ConfigSource source;                 // where SIGHUP reads it again
  std::unique_ptr<StateDirLock> state_lock;  // declared before the journal: released after it
  net::io_context io{1};
  net::signal_set signals;
  net::steady_timer rate_timer;
  std::unique_ptr<Journal> journal;
  RecoveryReport recovery;  // what Journal::Open found (status "journal.recovery")
  std::unique_ptr<JournalCommitter> committer;
  // Self-recovery of a failed journal (disk full): retried with a backoff on the io thread.
  net::steady_timer journal_timer{io};
  std::chrono::milliseconds journal_backoff{0};
  std::chrono::steady_clock::time_point journal_retry_at{};
  void JournalTick();
  std::unique_ptr<IngestServer> server;
  std::unique_ptr<DedupeWindow> dedupe;  // before the importer: it must outlive it
  std::unique_ptr<SpoolImporter> importer;
  // Shared with consumer threads (store writer, sinks, tail); outlives them.
  JournalProgress progress;
  ConsumerRegistry consumers;
  std::unique_ptr<SystemdNotifier> notifier;
  std::unique_ptr<StoreWriter> store;  // store thread; joined after progress.Stop()
  std::unique_ptr<StoreQuery> query;   // query thread; stopped on SIGTERM/SIGINT
  std::unique_ptr<Retention> retention;
  std::unique_ptr<TailServer> tails;
  net::steady_timer retention_timer;
  ConsumerRegistry::Slot* test_hold = nullptr;  // [journal] test_hold_consumer
  bool retention_due = false;                   // a segment rolled since the last run
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // (time, events_total) once a second over the last 10 s, for events_per_s.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_samples;
  bool stopping = false;
  // Upstream sinks (docs/sinks.md): one thread each. Created, replaced and removed on the io
  // thread only (start and SIGHUP).
  std::shared_ptr<const Redactor> redactor;
  std::vector<std::unique_ptr<Sink>> sinks;
  // `ferry flush --wait` requests still owed a reply; checked every 20 ms while any is open.
  struct FlushWait {
    uint64_t target = 0;
    std::vector<std::string> names;
    std::vector<uint64_t> failures_at_start;  // parallel to names
    std::chrono::steady_clock::time_point deadline;
    bool has_deadline = false;
    std::function<void(std::string)> reply;
  };
  std::vector<FlushWait> flush_waits;
  net::steady_timer flush_timer;
  bool flush_timer_armed = false;

  std::string StatusJson() const;
  std::string StatusLine() const;
  std::string LivenessProblem(std::chrono::microseconds watchdog_interval) const;
  void Reload();
  void WriteStoreStatus(proto::JsonWriter& w) const;
  void SampleRate();
  void RetentionTick();
  void OnStatusRequest(const rapidjson::Value& request);
  void OnSignal(const boost::system::error_code& ec, int signo);
  SinkDeps MakeSinkDeps() const;
  // Sinks may now send up to `seq` (see JournalProgress::PublishShippable).
  void Shippable(uint64_t seq) {
    progress.PublishShippable(seq);
    for (const auto& sink : sinks) sink->OnWritten();
  }
  void StartSink(const SinkConfig& sc);
  Sink* FindSink(const std::string& name) const;
  std::string SinkNames() const;
  // ERROR unknown_sink, naming the configured sinks.
  std::string UnknownSinkFrame(const std::string& name) const;
  void OnFlush(proto::FlushRequest req, std::function<void(std::string)> reply);
  void OnDeadletter(const proto::DeadletterRequest& req, std::function<void(std::string)> reply);
  // Replies to the flush waits that are done; re-arms the timer while any remain.
  void CheckFlushWaits(bool final);
  std::string FlushResult(const FlushWait& fw, bool done, bool timed_out) const;
};

SinkDeps Daemon::Impl::MakeSinkDeps() const {
  SinkDeps deps;
  deps.state_dir = config.state_dir;
  deps.journal_dir = config.state_dir + "/journal";
  deps.progress = const_cast<JournalProgress*>(&progress);
  deps.consumers = const_cast<ConsumerRegistry*>(&consumers);
  deps.meta.host = HostName();
  deps.meta.host_id = HostIdentity();
  deps.meta.version = FERRY_VERSION;
  return deps;
}

void Daemon::Impl::StartSink(const SinkConfig& sc) {
  auto sink = std::make_unique<Sink>(sc, MakeSinkDeps(), redactor);
  Status s = sink->Open(journal->oldest_seq(), journal->written_seq());
  if (!s.ok()) {
    spdlog::error("sink {}: {}; not started", sc.name, s.ToString());
    return;
  }
  spdlog::info("sink {} ({}) -> {}", sc.name, sc.type, UrlForDisplay(sc.EndpointUrl()));
  sink->Start();
  sinks.push_back(std::move(sink));
}

Sink* Daemon::Impl::FindSink(const std::string& name) const {
  for (const auto& s : sinks) {
    if (s->name() == name) return s.get();
  }
  return nullptr;
}

std::string Daemon::Impl::UnknownSinkFrame(const std::string& name) const {
  return proto::EncodeFrame(
      proto::FrameType::kError,
      proto::MakeErrorBody(
          {proto::Errc::kUnknownSink, "no sink named \"" + name + "\" (" + SinkNames() + ")"},
          false));
}

std::string Daemon::Impl::SinkNames() const {
  std::string names;
  for (const auto& s : sinks) names += (names.empty() ? "" : ", ") + s->name();
  return names.empty() ? "no sinks configured" : "configured: " + names;
}

std::string Daemon::Impl::FlushResult(const FlushWait& fw, bool done, bool timed_out) const {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  w.Key("target_seq");
  w.Uint64(fw.target);
  w.Key("done");
  w.Bool(done);
  w.Key("timed_out");
  w.Bool(timed_out);
  w.Key("sinks");
  w.StartArray();
  for (size_t i = 0; i < fw.names.size(); ++i) {
    const Sink* sink = FindSink(fw.names[i]);
    w.StartObject();
    w.Key("name");
    w.String(fw.names[i].c_str());
    if (!sink) {
      w.Key("state");
      w.String("removed");
      w.Key("error");
      w.String("the sink was removed by a config reload");
      w.EndObject();
      continue;
    }
    const uint64_t cursor = sink->cursor();
    const bool failed =
        sink->state() == Sink::State::kPaused || sink->failures_total() > fw.failures_at_start[i];
    w.Key("cursor");
    w.Uint64(cursor);
    w.Key("caught_up");
    w.Bool(cursor >= fw.target);
    w.Key("state");
    w.String(Sink::StateName(sink->state()));
    w.Key("error");
    const std::string err = sink->last_error_text();
    if (failed && cursor < fw.target && !err.empty()) {
      w.String(err.c_str());
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void Daemon::Impl::OnFlush(proto::FlushRequest req, std::function<void(std::string)> reply) {
  if (!req.sink.empty() && !FindSink(req.sink)) return reply(UnknownSinkFrame(req.sink));
  FlushWait fw;
  fw.target = journal->written_seq();
  if (config.fsync == FsyncPolicy::kNever) {
    Shippable(fw.target);
  } else if (fw.target > progress.shippable()) {
    // Sinks send only what is durable: sync now rather than at the next interval.
    committer->Written(journal->active_segment(), fw.target, /*sync_now=*/true);
  }
  for (const auto& s : sinks) {
    if (!req.sink.empty() && s->name() != req.sink) continue;
    s->Flush(fw.target);
    fw.names.push_back(s->name());
    fw.failures_at_start.push_back(s->failures_total());
  }
  fw.reply = std::move(reply);
  if (!req.wait || fw.names.empty()) {
    fw.reply(proto::EncodeFrame(proto::FrameType::kFlushResult, FlushResult(fw, true, false)));
    return;
  }
  if (req.timeout_ms > 0) {
    fw.has_deadline = true;
    fw.deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(req.timeout_ms);
  }
  flush_waits.push_back(std::move(fw));
  CheckFlushWaits(false);
}

void Daemon::Impl::CheckFlushWaits(bool final) {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < flush_waits.size();) {
    FlushWait& fw = flush_waits[i];
    bool all_caught_up = true, failed = false;
    for (size_t k = 0; k < fw.names.size(); ++k) {
      const Sink* sink = FindSink(fw.names[k]);
      if (!sink) {
        failed = true;
        continue;
      }
      if (sink->cursor() >= fw.target) continue;
      all_caught_up = false;
      if (sink->state() == Sink::State::kPaused ||
          sink->failures_total() > fw.failures_at_start[k]) {
        failed = true;
      }
    }
    const bool timed_out = fw.has_deadline && now >= fw.deadline;
    if (all_caught_up || failed || timed_out || final) {
      fw.reply(proto::EncodeFrame(proto::FrameType::kFlushResult,
                                  FlushResult(fw, all_caught_up, timed_out && !all_caught_up)));
      flush_waits.erase(flush_waits.begin() + static_cast<ptrdiff_t>(i));
    } else {
      ++i;
    }
  }
  if (!flush_waits.empty() && !flush_timer_armed && !final) {
    flush_timer_armed = true;
    flush_timer.expires_after(std::chrono::milliseconds(20));
    flush_timer.async_wait([this](const boost::system::error_code& ec) {
      flush_timer_armed = false;
      if (!ec) CheckFlushWaits(stopping);
    });
  }
}

void Daemon::Impl::OnDeadletter(const proto::DeadletterRequest& req,
                                std::function<void(std::string)> reply) {
  if (!req.sink.empty() && !FindSink(req.sink)) return reply(UnknownSinkFrame(req.sink));
  // Purge deletes files: each sink thread does it and answers through the io context, so this
  // thread never waits for a sink's disk I/O. The reply goes out when every sink answered.
  struct Pending {
    std::string op;
    std::vector<std::string> names;
    std::vector<uint64_t> counts;
    std::vector<std::string> errors;
    size_t left = 0;
    std::function<void(std::string)> reply;
    void Answer() {
      rapidjson::StringBuffer sb;
      proto::JsonWriter w(sb);
      w.StartObject();
      w.Key("op");
      w.String(op.c_str());
      w.Key("sinks");
      w.StartArray();
      for (size_t i = 0; i < names.size(); ++i) {
        w.StartObject();
        w.Key("name");
        w.String(names[i].c_str());
        w.Key(op == "replay" ? "queued" : "purged");
        w.Uint64(counts[i]);
        if (!errors[i].empty()) {
          w.Key("error");
          w.String(errors[i].c_str());
        }
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      reply(proto::EncodeFrame(proto::FrameType::kDeadletterResult,
                               std::string(sb.GetString(), sb.GetSize())));
    }
  };
  auto p = std::make_shared<Pending>();
  p->op = req.op;
  p->reply = std::move(reply);
  std::vector<Sink*> chosen;
  for (const auto& s : sinks) {
    if (!req.sink.empty() && s->name() != req.sink) continue;
    chosen.push_back(s.get());
    p->names.push_back(s->name());
    p->counts.push_back(req.op == "replay" ? s->RequestReplay() : 0);
    p->errors.emplace_back();
  }
  if (req.op == "replay" || chosen.empty()) return p->Answer();
  p->left = chosen.size();
  for (size_t i = 0; i < chosen.size(); ++i) {
    chosen[i]->PurgeDeadletters([this, p, i](uint64_t n, std::string error) {
      net::post(io, [p, i, n, error = std::move(error)]() mutable {
        p->counts[i] = n;
        p->errors[i] = std::move(error);
        if (--p->left == 0) p->Answer();
      });
    });
  }
}

std::string Daemon::Impl::StatusJson() const {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  const IngestCounters& c = server->counters();
  const bool journal_ok = !journal->failed();
  const uint64_t lost = retention->lost_events();
  const bool store_ok = !store || !store->counters().failed.load();
  bool sinks_ok = true;
  for (const auto& sink : sinks) {
    sinks_ok &= sink->state() != Sink::State::kPaused && sink->deadlettered() == 0;
  }
  // Journal damage met by any reader, and read errors being retried (issue 10 #2, #4).
  const std::vector<std::string> read_problems = journal_health::Problems();
  const bool healthy =
      journal_ok && retention->unacked_lost() == 0 && store_ok && sinks_ok && read_problems.empty();

  double rate = 0;
  if (rate_samples.size() >= 2) {
    const auto& [t0, n0] = rate_samples.front();
    const double dt = SecondsSince(t0);
    if (dt > 0) rate = static_cast<double>(c.events_total - n0) / dt;
  }

  w.StartObject();
  w.Key("healthy");
  w.Bool(healthy);
  w.Key("problems");
  w.StartArray();
  if (!journal_ok) w.String(("journal refuses appends: " + journal->failure().ToString()).c_str());
  if (!store_ok) w.String(("store: " + store->error()).c_str());
  for (const std::string& p : read_problems) w.String(p.c_str());
  if (retention->unacked_lost() > 0) {
    w.String((std::to_string(retention->unacked_lost()) +
              " event(s) lost to the journal byte cap (ferry status --ack-lost acknowledges)")
                 .c_str());
  }
  for (const auto& sink : sinks) {
    if (sink->state() == Sink::State::kPaused) {
      w.String(("sink " + sink->name() + " is paused: " + sink->last_error_text()).c_str());
    }
    if (sink->deadlettered() > 0) {
      w.String(("sink " + sink->name() + " has " + std::to_string(sink->deadlettered()) +
                " dead letter(s) (ferry deadletter list)")
                   .c_str());
    }
  }
  w.EndArray();

  w.Key("daemon");
  w.StartObject();
  w.Key("pid");
  w.Int64(::getpid());
  w.Key("version");
  w.String(FERRY_VERSION);
  w.Key("uptime_s");
  w.Double(SecondsSince(started));
  w.Key("socket");
  w.String(config.socket_path.c_str());
  w.Key("state_dir");
  w.String(config.state_dir.c_str());
  w.Key("config");
  w.String(config.path.c_str());
  w.EndObject();

  w.Key("journal");
  w.StartObject();
  w.Key("last_seq");
  w.Uint64(journal->written_seq());
  w.Key("durable_seq");
  w.Uint64(server->durable_seq());
  w.Key("oldest_seq");
  w.Uint64(journal->oldest_seq());
  w.Key("bytes");
  w.Uint64(journal->total_bytes());
  w.Key("segments");
  w.Uint64(journal->segment_count());
  w.Key("fsync");
  w.String(FsyncPolicyName(config.fsync));
  w.Key("syncs");
  w.Uint64(committer->syncs());
  retention->WriteJournalKeys(w);
  w.Key("recoveries");
  w.Uint64(journal->recoveries());
  w.Key("recovery");
  w.StartObject();
  w.Key("segments_end_seq");  // the last seq the segments held at start
  w.Uint64(recovery.segments_next_seq - 1);
  w.Key("next_seq");
  w.Uint64(recovery.next_seq);
  w.Key("skipped_seqs");
  w.Uint64(recovery.next_seq - recovery.segments_next_seq);
  w.Key("skipped_reason");
  if (recovery.next_seq_reason.empty() || recovery.next_seq == recovery.segments_next_seq) {
    w.Null();
  } else {
    w.String(recovery.next_seq_reason.c_str());
  }
  w.Key("dropped_bytes");
  w.Uint64(recovery.dropped_bytes);
  w.Key("strays");
  w.StartArray();
  for (const std::string& stray : recovery.strays) w.String(stray.c_str());
  w.EndArray();
  w.EndObject();
  w.Key("healthy");
  w.Bool(journal_ok);
  w.Key("error");
  if (journal_ok) {
    w.Null();
  } else {
    w.String(journal->failure().ToString().c_str());
  }
  w.EndObject();

  w.Key("ingest");
  w.StartObject();
  w.Key("events_total");
  w.Uint64(c.events_total);
  w.Key("events_per_s");
  w.Double(rate);
  w.Key("connections");
  w.Uint64(server->connections());
  w.Key("connections_total");
  w.Uint64(c.connections_total);
  w.Key("connections_refused");
  w.Uint64(c.connections_refused);
  w.Key("rejected_total");
  w.Uint64(c.rejected_total);
  w.Key("duplicates_total");
  w.Uint64(c.duplicates_total);
  w.EndObject();

  if (importer) {
    const SpoolPending pending = importer->Pending();
    const SpoolCounters& spool = importer->counters();
    w.Key("spool");
    w.StartObject();
    w.Key("pending_files");
    w.Uint64(pending.files);
    w.Key("pending_events");
    w.Uint64(pending.events);
    w.Key("files_imported");
    w.Uint64(spool.files_imported);
    w.Key("events_imported");
    w.Uint64(spool.events_imported);
    w.Key("duplicates");
    w.Uint64(spool.duplicates);
    w.Key("torn_lines");
    w.Uint64(spool.torn_lines);
    w.Key("invalid_lines");
    w.Uint64(spool.invalid_lines);
    w.Key("files_rejected");
    w.Uint64(spool.files_rejected);
    w.Key("dedupe_window");
    w.Uint64(dedupe->size());
    w.EndObject();
  }
  if (store) WriteStoreStatus(w);

  w.Key("sinks");
  w.StartArray();
  for (const auto& sink : sinks) sink->WriteStatus(w, journal->written_seq());
  w.EndArray();
  w.Key("consumers");
  retention->WriteConsumers(w);
  w.Key("tails");
  w.Uint64(tails->active());
  w.Key("lost_events");
  w.Uint64(lost);
  w.Key("unacked_lost_events");
  w.Uint64(retention->unacked_lost());
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string Daemon::Impl::StatusLine() const {
  std::string line = std::to_string(server->counters().events_total) + " events; last seq " +
                     std::to_string(journal->written_seq()) + "; durable seq " +
                     std::to_string(server->durable_seq()) + "; " +
                     std::to_string(server->connections()) + " connections";
  if (journal->failed()) line += "; JOURNAL FAILED: " + journal->failure().ToString();
  return line;
}

std::string Daemon::Impl::LivenessProblem(std::chrono::microseconds watchdog_interval) const {
  if (journal->failed()) return "journal refuses appends: " + journal->failure().ToString();
  if (auto since = committer->SyncInProgressSince()) {
    const auto busy = std::chrono::steady_clock::now() - *since;
    if (busy > watchdog_interval) {
      return "the sync thread has been in one fdatasync for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(busy).count()) +
             " ms";
    }
  }
  return {};
}

// Everything a running ferryd can change in place is applied here; the rest is named in the
// log and keeps its running value until a restart. An invalid file changes nothing.
void Daemon::Impl::Reload() {
  notifier->Reloading();
  Config next;
  std::string error;
  if (!LoadEffectiveConfig(source, &next, &error)) {
    spdlog::error("SIGHUP: {}; keeping the running configuration", error);
    notifier->Reloaded();
    return;
  }
  const ConfigChanges changes = DiffConfig(config, next);
  next.socket_path = config.socket_path;
  next.state_dir = config.state_dir;
  next.segment_bytes = config.segment_bytes;
  next.max_bytes = config.max_bytes;
  const std::string from = source.path + (next.path.empty() ? " (absent; defaults)" : "");
  if (!changes.restart.empty()) {
    spdlog::warn("SIGHUP: {} needs a restart to apply (keeping the running value): {}", from,
                 Join(changes.restart));
  }
  spdlog::info("SIGHUP: reloaded {}: {}", from,
               changes.live.empty() ? "nothing to apply" : Join(changes.live));
  SetLogLevel(next.log_level);
  server->SetLimits(LimitsFrom(next));
  if (next.fsync != config.fsync || next.fsync_interval != config.fsync_interval) {
    committer->SetPolicy(next.fsync, next.fsync_interval);
  }
  if (next.fsync == FsyncPolicy::kNever) Shippable(journal->written_seq());
  std::shared_ptr<const Redactor> new_redactor;
  if (changes.redact_changed) {
    Status rs = Redactor::Compile(next.redact, &new_redactor);
    if (rs.ok()) {
      redactor = new_redactor;
      server->SetLocalRedactor(next.redact.local ? redactor : nullptr);
      if (importer) importer->SetLocalRedactor(next.redact.local ? redactor : nullptr);
    } else {
      spdlog::error("SIGHUP: redact rules: {}; keeping the running rules", rs.ToString());
      new_redactor.reset();
    }
  }
  config = std::move(next);
  const auto listed = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  for (auto it = sinks.begin(); it != sinks.end();) {
    const std::string& name = (*it)->name();
    if (listed(changes.sinks_removed, name) || listed(changes.sinks_changed, name)) {
      spdlog::info("SIGHUP: stopping sink {}", name);
      (*it)->Stop();
      it = sinks.erase(it);  // joins the thread; the cursor file stays
    } else {
      (*it)->Reload(new_redactor);  // re-reads its token; a paused sink retries now
      ++it;
    }
  }
  for (const SinkConfig& sc : config.sinks) {
    if (listed(changes.sinks_added, sc.name) || listed(changes.sinks_changed, sc.name)) {
      StartSink(sc);
    }
  }
  notifier->Reloaded();
}

void Daemon::Impl::WriteStoreStatus(proto::JsonWriter& w) const {
  const StoreCounters& sc = store->counters();
  const uint64_t cursor = sc.cursor.load();
  const uint64_t written = journal->written_seq();
  w.Key("store");
  w.StartObject();
  w.Key("cursor");
  w.Uint64(cursor);
  w.Key("lag_events");
  w.Uint64(written > cursor ? written - cursor : 0);
  w.Key("db_bytes");
  w.Uint64(sc.db_bytes.load());
  w.Key("last_batch_events");
  w.Uint64(sc.last_batch_events.load());
  w.Key("last_batch_ms");
  w.Double(static_cast<double>(sc.last_batch_us.load()) / 1000.0);
  w.Key("batches");
  w.Uint64(sc.batches.load());
  w.Key("rows");
  w.Uint64(sc.rows.load());
  w.Key("duplicates");
  w.Uint64(sc.duplicates.load());
  w.Key("malformed");
  w.Uint64(sc.malformed.load());
  w.Key("skipped_seqs");
  w.Uint64(sc.skipped_seqs.load());
  w.Key("retention_deleted");
  w.Uint64(sc.retained_deleted.load());
  w.Key("beyond_journal");  // seqs applied beyond the journal's end at start (rows kept)
  w.Uint64(sc.beyond_journal.load());
  const bool rebuilding = sc.rebuilding.load();
  w.Key("rebuilding");
  w.Bool(rebuilding);
  w.Key("rebuild_progress");
  if (rebuilding) {
    const uint64_t from = sc.rebuild_from.load(), target = sc.rebuild_target.load();
    const uint64_t done = cursor > from ? cursor - from : 0;
    w.Double(target > from ? static_cast<double>(done) / static_cast<double>(target - from) : 1.0);
  } else {
    w.Null();
  }
  const std::string read_error = journal_health::IoError("store");
  w.Key("read_error");
  if (read_error.empty()) {
    w.Null();
  } else {
    w.String(read_error.c_str());
  }
  w.Key("healthy");
  w.Bool(!sc.failed.load() && read_error.empty());
  w.Key("error");
  const std::string error = store->error();
  if (error.empty()) {
    w.Null();
  } else {
    w.String(error.c_str());
  }
  w.EndObject();
}

void Daemon::Impl::SampleRate() {
  rate_samples.emplace_back(std::chrono::steady_clock::now(), server->counters().events_total);
  while (rate_samples.size() > 11) rate_samples.pop_front();
  rate_timer.expires_after(std::chrono::seconds(1));
  rate_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping) SampleRate();
  });
}

// A failed journal (a write or fdatasync failed: disk full, I/O error) refuses appends, and
// clients spool. Every backoff (250 ms doubling to 5 s) it tries to continue in a fresh
// segment; when the disk takes it, appends resume by themselves (docs/journal-format.md,
// "Failures and self-recovery").
void Daemon::Impl::JournalTick() {
  using namespace std::chrono_literals;
  if (journal->failed() && !stopping) {
    const auto now = std::chrono::steady_clock::now();
    if (journal_backoff.count() == 0) {
      journal_backoff = 250ms;
      journal_retry_at = now + journal_backoff;
    } else if (now >= journal_retry_at) {
      const Status failure = journal->failure();
      std::shared_ptr<SegmentFile> closed;
      uint64_t closed_last = 0;
      Status s = journal->TryRecover(&closed, &closed_last);
      if (s.ok()) {
        const bool after_write = closed != nullptr;
        committer->Recover(journal->active_segment(), std::move(closed), closed_last);
        server->ClearSyncFailure();
        // Ids of events that were refused are in the dedupe window; their clients spooled
        // them, and the import must not take them for duplicates. Rebuilt from what the
        // journal holds for sure (after a failed fdatasync: what was synced before it).
        dedupe->Clear();
        Status ds = dedupe->Load(journal->dir(),
                                 after_write ? journal->written_seq() : server->durable_seq());
        if (!ds.ok()) spdlog::warn("dedupe window: {}", ds.ToString());
        spdlog::warn("journal recovered from \"{}\": appends continue at seq {} in {}",
                     failure.ToString(), journal->last_seq() + 1, journal->active_segment()->path);
        journal_backoff = 0ms;
        retention_due = true;
        progress.PublishWritten(journal->written_seq());
      } else {
        spdlog::debug("journal still failed: {}", s.ToString());
        journal_backoff = std::min<std::chrono::milliseconds>(journal_backoff * 2, 5s);
        journal_retry_at = now + journal_backoff;
      }
    }
  }
  journal_timer.expires_after(100ms);
  journal_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping) JournalTick();
  });
}

void Daemon::Impl::RetentionTick() {
  retention->Run();
  retention_timer.expires_after(std::chrono::seconds(1));
  retention_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping) RetentionTick();
  });
}

void Daemon::Impl::OnStatusRequest(const rapidjson::Value& request) {
  auto ack = request.FindMember("ack_lost");
  if (ack != request.MemberEnd() && ack->value.IsBool() && ack->value.GetBool()) {
    retention->AckLost();
    journal_health::AckDamage();
  }
  auto cursor = request.FindMember("test_consumer_cursor");
  if (test_hold && cursor != request.MemberEnd() && cursor->value.IsUint64()) {
    test_hold->cursor.store(cursor->value.GetUint64());
    retention->Run();  // so the reply already shows the effect
  }
}

void Daemon::Impl::OnSignal(const boost::system::error_code& ec, int signo) {
  if (ec) return;
  if (signo == SIGHUP) {
    if (!stopping) Reload();
    signals.async_wait([this](const boost::system::error_code& e, int s) { OnSignal(e, s); });
    return;
  }
  spdlog::info("{}: stopping; acking what is in flight", strsignal(signo));
  stopping = true;
  notifier->Stopping();
  rate_timer.cancel();
  CheckFlushWaits(true);  // a `ferry flush --wait` gets its answer before the socket closes
  flush_timer.cancel();
  if (importer) importer->Stop();
  // A running query is interrupted now, so its connection gets its answer (shutting_down)
  // within the drain rather than holding the shutdown for the whole drain time.
  if (query) query->Stop();
  retention_timer.cancel();
  journal_timer.cancel();
  server->BeginShutdown(std::chrono::seconds(10), [this] {
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
}

Daemon::Daemon(Config config, ConfigSource source)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(source))) {}
Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& d = *impl_;
  const Config& cfg = d.config;
  ::signal(SIGPIPE, SIG_IGN);
  if (Status made = MakeDirs(cfg.state_dir); !made.ok()) {
    throw std::runtime_error(made.message());
  }
  // Refuse a state dir that another user owns or can write to (they could swap spool/,
  // journal/ or ferry.db); tighten one that others can only read.
  if (Status ok = CheckPrivateDir(cfg.state_dir, "state directory", false); !ok.ok()) {
    throw std::runtime_error(ok.message());
  }
  // spool/ is where clients drop events: it must be a real directory of ours (checked here,
  // before any thread starts, so a refusal exits at once; SpoolImporter::Start checks again).
  if (const std::string spool = cfg.state_dir + "/spool";
      ::mkdir(spool.c_str(), 0700) == 0 || errno == EEXIST) {
    if (Status ok = CheckPrivateDir(spool, "spool directory", true); !ok.ok()) {
      throw std::runtime_error(ok.message());
    }
  }
  // Files made before ferryd set its umask (an older ferryd run by hand with umask 022)
  // are tightened: ferry.db and its -wal/-shm hold every payload.
  for (const char* name : {"ferry.db", "ferry.db-wal", "ferry.db-shm", "ferryd.lock"}) {
    const std::string path = cfg.state_dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
      if (::chmod(path.c_str(), 0600) == 0) {
        spdlog::warn("{} was mode {:o}; set it to 0600", path, st.st_mode & 07777);
      } else {
        spdlog::warn("{} is mode {:o} and chmod 0600 failed: {}", path, st.st_mode & 07777,
                     std::strerror(errno));
      }
    }
  }
  d.state_lock = std::make_unique<StateDirLock>(cfg.state_dir);

  Journal::Options jopts;
  jopts.dir = cfg.state_dir + "/journal";
  jopts.segment_bytes = cfg.segment_bytes;
  jopts.min_next_seq = ConsumerFloor(cfg, &jopts.min_next_seq_source);
  RecoveryReport& report = d.recovery;
  Status s = Journal::Open(jopts, &d.journal, &report);
  if (!s.ok()) throw std::runtime_error("cannot open the journal: " + s.ToString());
  for (const std::string& stray : report.strays) {
    spdlog::warn(
        "journal recovery: moved a stray segment aside (its name does not continue "
        "the sequence): {}",
        stray);
  }
  if (report.dropped_bytes > 0) {
    spdlog::warn("journal recovery: dropped {} bytes at offset {} of the last segment ({}){}",
                 report.dropped_bytes, report.dropped_at, report.reason,
                 report.saved_path.empty() ? "" : "; the bytes are kept in " + report.saved_path);
  }
  if (report.next_seq > report.segments_next_seq) {
    spdlog::warn(
        "journal recovery: the segments end at seq {} but {}: seqs {}-{} are skipped "
        "and never handed out; continuing at seq {}",
        report.segments_next_seq - 1, report.next_seq_reason, report.segments_next_seq,
        report.next_seq - 1, report.next_seq);
  }
  spdlog::info("journal {}: {} segment(s), last seq {}", jopts.dir, report.segments,
               report.last_seq);

  if (cfg.store_enabled) {
    StoreOptions sopts;
    sopts.db_path = cfg.state_dir + "/ferry.db";
    sopts.journal_dir = jopts.dir;
    sopts.batch_interval = cfg.store_batch_interval;
    sopts.batch_events = cfg.store_batch_events;
    sopts.session_idle_timeout = cfg.session_idle_timeout;
    sopts.retain_age = cfg.store_retain_age;
    sopts.retain_rows = cfg.store_retain_rows;
    d.store = std::make_unique<StoreWriter>(sopts, d.progress, d.consumers.Register("store", 0));
    s = d.store->Open(d.journal->written_seq());
    if (s.ok()) {
      spdlog::info("store {}: applied up to seq {}", sopts.db_path, d.store->cursor());
    } else {
      // Ingest does not wait for the store: the journal takes events, and the store thread
      // retries the open with a backoff, then catches up (status shows the store failed).
      spdlog::error("{}; serving ingest without the store and retrying", s.ToString());
    }
    d.query = std::make_unique<StoreQuery>(
        sopts.db_path, QueryLimits{cfg.query_timeout, cfg.query_max_rows, 3u << 20});
  } else {
    spdlog::info("store disabled ([store] enabled = false): no ferry.db, no ferry query");
  }

  JournalCommitter::Callbacks callbacks;
  callbacks.on_durable = [&d](uint64_t seq) {
    net::post(d.io, [&d, seq] {
      d.server->OnDurable(seq);
      if (d.importer) d.importer->OnDurable(seq);
      d.Shippable(seq);
    });
  };
  callbacks.on_failure = [&d](const Status& st) {
    net::post(d.io, [&d, st] { d.server->OnSyncFailed(st); });
  };
  d.committer = std::make_unique<JournalCommitter>(cfg.fsync, cfg.fsync_interval, callbacks);
  d.retention = std::make_unique<Retention>(*d.journal, d.consumers, cfg.max_bytes,
                                            cfg.state_dir + "/retention.json");
  s = d.retention->Load();
  if (!s.ok()) throw std::runtime_error("cannot read the retention counts: " + s.ToString());
  if (!cfg.test_hold_consumer.empty()) {
    d.test_hold = d.consumers.Register(cfg.test_hold_consumer, 0);
  }
  d.journal->SetRollCallback([&d](std::shared_ptr<SegmentFile> closed, uint64_t last_seq) {
    d.committer->Closed(std::move(closed), last_seq);
    d.retention_due = true;  // run after the flush, not inside it (see the written listener)
  });
  d.tails = std::make_unique<TailServer>(jopts.dir, d.progress);

  d.server = std::make_unique<IngestServer>(d.io, LimitsFrom(cfg), *d.journal, *d.committer,
                                            [&d] { return d.StatusJson(); });
  int passed_fd = -1;
  std::string passed_path;
  s = systemd::TakeListenSocket(cfg.socket_path, &passed_fd, &passed_path);
  if (!s.ok()) throw std::runtime_error("socket activation: " + s.message());
  if (passed_fd >= 0) {
    s = d.server->Adopt(passed_fd, passed_path);
  } else {
    s = d.server->Listen(cfg.socket_path);
  }
  if (!s.ok()) throw std::runtime_error(s.message());
  d.committer->Start(d.journal->active_segment(), d.journal->written_seq());
  d.server->OnDurable(d.journal->written_seq());  // recovery synced everything it kept
  d.progress.PublishWritten(d.journal->written_seq());
  d.progress.PublishShippable(d.journal->written_seq());  // recovery synced what it kept
  d.server->SetWrittenListener([&d](uint64_t seq) {
    d.progress.PublishWritten(seq);
    if (d.config.fsync == FsyncPolicy::kNever) d.Shippable(seq);
    // After every flush that rolled or went over the cap, so the journal is back under its
    // cap before the acks of that flush go out.
    if (d.retention_due || d.journal->total_bytes() > d.config.max_bytes) {
      d.retention_due = false;
      d.retention->Run();
    }
  });
  for (const auto& sink : d.sinks) sink->OnWritten();
  d.server->SetStatusRequestHook([&d](const rapidjson::Value& req) { d.OnStatusRequest(req); });
  d.server->SetFlushHandler([&d](proto::FlushRequest req, std::function<void(std::string)> reply) {
    d.OnFlush(std::move(req), std::move(reply));
  });
  d.server->SetDeadletterHandler(
      [&d](proto::DeadletterRequest req, std::function<void(std::string)> reply) {
        d.OnDeadletter(req, std::move(reply));
      });
  d.server->SetTailHandler([&d](int fd, const proto::TailRequest& req, std::string* error) {
    return d.tails->Start(fd, req, error);
  });
  d.server->SetQueryHandler([&d](std::string body, std::function<void(std::string)> reply) {
    if (!d.query) {
      reply(proto::EncodeFrame(
          proto::FrameType::kError,
          proto::MakeErrorBody({proto::Errc::kQueryFailed,
                                "the store is disabled ([store] enabled = false in config.toml)"},
                               false)));
      return;
    }
    // `reply` owns the session: it is moved (never copied) into the io thread's handler, so
    // the session's last reference is dropped there, not on the query thread. StoreQuery
    // calls `done` once, on the query thread or, when stopping, on the caller of Stop().
    d.query->Submit(std::move(body), [&d, reply = std::move(reply)](bool ok, std::string result,
                                                                    proto::Error error) mutable {
      std::string frame =
          ok ? proto::EncodeFrame(proto::FrameType::kQueryResult, result)
             : proto::EncodeFrame(proto::FrameType::kError, proto::MakeErrorBody(error, false));
      net::post(d.io, [reply = std::move(reply), frame = std::move(frame)]() mutable {
        reply(std::move(frame));
      });
    });
  });
  s = Redactor::Compile(cfg.redact, &d.redactor);
  if (!s.ok()) throw std::runtime_error("redact rules: " + s.ToString());
  // From here on threads run: a start-up failure must stop them before the exception leaves,
  // or ~StoreWriter would wait forever for a progress that never stops (and under systemd the
  // watchdog would kill a ferryd that never answers).
  try {
    if (d.store) d.store->Start();
    if (d.query) d.query->Start();
    if (cfg.redact.local) {
      d.server->SetLocalRedactor(d.redactor);
      spdlog::info("[redact] local = true: events are redacted before the journal");
    }
    for (const SinkConfig& sc : cfg.sinks) d.StartSink(sc);
    if (cfg.sinks.empty()) spdlog::info("no [[sink]] configured: events stay on this machine");

    // Event ids of the journal's tail, so events spooled by clients that gave up on a late ack
    // are not stored twice (docs/operations.md "Spool").
    d.dedupe = std::make_unique<DedupeWindow>(cfg.dedupe_window);
    s = d.dedupe->Load(jopts.dir, d.journal->written_seq());
    if (!s.ok()) spdlog::warn("dedupe window: {}", s.ToString());
    d.server->SetDedupeWindow(d.dedupe.get());
    d.importer = std::make_unique<SpoolImporter>(d.io, cfg.state_dir + "/spool", *d.journal,
                                                 *d.committer, *d.dedupe, [&d](uint64_t seq) {
                                                   d.progress.PublishWritten(seq);
                                                   if (d.config.fsync == FsyncPolicy::kNever)
                                                     d.Shippable(seq);
                                                 });
    if (cfg.redact.local) d.importer->SetLocalRedactor(d.redactor);
    s = d.importer->Start();
    if (!s.ok()) throw std::runtime_error("cannot import the spool: " + s.ToString());
  } catch (...) {
    d.progress.Stop();
    for (const auto& sink : d.sinks) sink->Stop();
    if (d.query) d.query->Stop();
    if (d.store) d.store->Join();
    d.sinks.clear();
    d.tails->Stop();
    d.committer->Stop().PermitUncheckedError();
    throw;
  }
  d.importer->OnDurable(d.journal->written_seq());

  d.signals.add(SIGINT);
  d.signals.add(SIGTERM);
  d.signals.add(SIGHUP);
  d.signals.async_wait(
      [&d](const boost::system::error_code& ec, int signo) { d.OnSignal(ec, signo); });
  d.SampleRate();
  d.RetentionTick();
  d.JournalTick();
  d.server->Start();
  spdlog::info("ferryd {} listening on {}{} (state {}, fsync {})", FERRY_VERSION, cfg.socket_path,
               passed_fd >= 0 ? " (socket passed by systemd)" : "", cfg.state_dir,
               FsyncPolicyName(cfg.fsync));
  SystemdNotifier::Hooks hooks;
  hooks.status_line = [&d] { return d.StatusLine(); };
  hooks.liveness_problem = [&d](std::chrono::microseconds wd) { return d.LivenessProblem(wd); };
  d.notifier = std::make_unique<SystemdNotifier>(d.io, std::move(hooks), kStatusPeriod);
  d.notifier->Ready();  // the journal is recovered and the socket accepts

  d.io.run();

  s = d.journal->Flush();
  if (s.ok()) d.progress.PublishWritten(d.journal->written_seq());
  if (Status hw = d.journal->SaveHighWater(); !hw.ok()) {
    spdlog::warn("cannot record the journal's high-water mark: {}", hw.ToString());
  }
  d.progress.Stop();                              // consumers finish their last batch and exit
  for (const auto& sink : d.sinks) sink->Stop();  // an unfinished POST is resent after restart
  if (d.query) d.query->Stop();
  if (d.store) d.store->Join();  // its last batch is committed (or, on failure, rolled back) by now
  d.sinks.clear();               // joins the sink threads
  d.tails->Stop();
  Status sync = d.committer->Stop();
  if (!s.ok() || !sync.ok() || d.journal->failed()) {
    spdlog::error("stopped with a failed journal: {}",
                  d.journal->failed() ? d.journal->failure().ToString() : sync.ToString());
    return 1;
  }
  spdlog::info("stopped cleanly; journal durable up to seq {}", d.journal->written_seq());
  return 0;
}

}  // namespace ferry
