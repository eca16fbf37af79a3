#include "daemon/daemon.h"

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

#include "daemon/asio.h"
#include "daemon/ingest_server.h"
#include "daemon/journal.h"
#include "daemon/journal_committer.h"
#include "daemon/journal_progress.h"
#include "daemon/journal_retention.h"
#include "daemon/tail_server.h"
#include "proto/event.h"

namespace ferry {
namespace {

void MakeDirs(const std::string& path) {
  std::string partial;
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      throw std::runtime_error("cannot create " + partial + ": " + std::strerror(errno));
    }
  }
}

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

}  // namespace

struct Daemon::Impl {
  explicit Impl(Config c)
      : config(std::move(c)), signals(io), rate_timer(io), retention_timer(io) {}

  Config config;
  std::unique_ptr<StateDirLock> state_lock;  // declared before the journal: released after it
  net::io_context io{1};
  net::signal_set signals;
  net::steady_timer rate_timer;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<JournalCommitter> committer;
  std::unique_ptr<IngestServer> server;
  // Shared with consumer threads (store writer, sinks, tail); outlives them.
  JournalProgress progress;
  ConsumerRegistry consumers;
  std::unique_ptr<Retention> retention;
  std::unique_ptr<TailServer> tails;
  net::steady_timer retention_timer;
  ConsumerRegistry::Slot* test_hold = nullptr;  // [journal] test_hold_consumer
  bool retention_due = false;                   // a segment rolled since the last run
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
  // (time, events_total) once a second over the last 10 s, for events_per_s.
  std::deque<std::pair<std::chrono::steady_clock::time_point, uint64_t>> rate_samples;
  bool stopping = false;

  std::string StatusJson() const;
  void SampleRate();
  void RetentionTick();
  void OnStatusRequest(const rapidjson::Value& request);
  void OnSignal(const boost::system::error_code& ec, int signo);
};

std::string Daemon::Impl::StatusJson() const {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  const IngestCounters& c = server->counters();
  const bool journal_ok = !journal->failed();
  const uint64_t lost = retention->lost_events();
  const bool healthy = journal_ok && retention->unacked_lost() == 0;

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
  if (retention->unacked_lost() > 0) {
    w.String((std::to_string(retention->unacked_lost()) +
              " event(s) lost to the journal byte cap (ferry status --ack-lost acknowledges)")
                 .c_str());
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
  w.EndObject();

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

void Daemon::Impl::SampleRate() {
  rate_samples.emplace_back(std::chrono::steady_clock::now(), server->counters().events_total);
  while (rate_samples.size() > 11) rate_samples.pop_front();
  rate_timer.expires_after(std::chrono::seconds(1));
  rate_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopping) SampleRate();
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
    spdlog::warn("SIGHUP: configuration reload is not supported yet; keeping the running config");
    signals.async_wait([this](const boost::system::error_code& e, int s) { OnSignal(e, s); });
    return;
  }
  spdlog::info("{}: stopping; acking what is in flight", strsignal(signo));
  stopping = true;
  rate_timer.cancel();
  retention_timer.cancel();
  server->BeginShutdown(std::chrono::seconds(10), [this] {
    boost::system::error_code ignored;
    signals.cancel(ignored);
  });
}

Daemon::Daemon(Config config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& d = *impl_;
  const Config& cfg = d.config;
  ::signal(SIGPIPE, SIG_IGN);
  MakeDirs(cfg.state_dir);
  d.state_lock = std::make_unique<StateDirLock>(cfg.state_dir);

  Journal::Options jopts;
  jopts.dir = cfg.state_dir + "/journal";
  jopts.segment_bytes = cfg.segment_bytes;
  RecoveryReport report;
  Status s = Journal::Open(jopts, &d.journal, &report);
  if (!s.ok()) throw std::runtime_error("cannot open the journal: " + s.ToString());
  if (report.dropped_bytes > 0) {
    spdlog::warn("journal recovery: dropped {} bytes at offset {} of the last segment ({}){}",
                 report.dropped_bytes, report.dropped_at, report.reason,
                 report.saved_path.empty() ? "" : "; the bytes are kept in " + report.saved_path);
  }
  spdlog::info("journal {}: {} segment(s), last seq {}", jopts.dir, report.segments,
               report.last_seq);

  JournalCommitter::Callbacks callbacks;
  callbacks.on_durable = [&d](uint64_t seq) {
    net::post(d.io, [&d, seq] { d.server->OnDurable(seq); });
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

  IngestLimits limits;
  limits.max_frame = cfg.max_frame_bytes;
  limits.max_connections = cfg.max_connections;
  limits.idle_timeout = cfg.idle_timeout;
  limits.max_batch_events = cfg.max_batch_events;
  d.server = std::make_unique<IngestServer>(d.io, limits, *d.journal, *d.committer,
                                            [&d] { return d.StatusJson(); });
  s = d.server->Listen(cfg.socket_path);
  if (!s.ok()) throw std::runtime_error(s.message());
  d.committer->Start(d.journal->active_segment(), d.journal->written_seq());
  d.server->OnDurable(d.journal->written_seq());  // recovery synced everything it kept
  d.progress.PublishWritten(d.journal->written_seq());
  d.server->SetWrittenListener([&d](uint64_t seq) {
    d.progress.PublishWritten(seq);
    // After every flush that rolled or went over the cap, so the journal is back under its
    // cap before the acks of that flush go out.
    if (d.retention_due || d.journal->total_bytes() > d.config.max_bytes) {
      d.retention_due = false;
      d.retention->Run();
    }
  });
  d.server->SetStatusRequestHook([&d](const rapidjson::Value& req) { d.OnStatusRequest(req); });
  d.server->SetTailHandler([&d](int fd, const proto::TailRequest& req, std::string* error) {
    return d.tails->Start(fd, req, error);
  });

  d.signals.add(SIGINT);
  d.signals.add(SIGTERM);
  d.signals.add(SIGHUP);
  d.signals.async_wait(
      [&d](const boost::system::error_code& ec, int signo) { d.OnSignal(ec, signo); });
  d.SampleRate();
  d.RetentionTick();
  d.server->Start();
  spdlog::info("ferryd {} listening on {} (state {}, fsync {})", FERRY_VERSION, cfg.socket_path,
               cfg.state_dir, FsyncPolicyName(cfg.fsync));

  d.io.run();

  s = d.journal->Flush();
  if (s.ok()) d.progress.PublishWritten(d.journal->written_seq());
  d.progress.Stop();  // consumers finish their last batch and exit
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
