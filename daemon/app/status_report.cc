#include "daemon/app/status_report.h"

#include <unistd.h>

#include "daemon/app/parts.h"
#include "daemon/base/file_util.h"
#include "daemon/journal/reader.h"
#include "daemon/sink/encode.h"

namespace ferry {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void StringOrNull(proto::JsonWriter& w, const std::string& s) {
  if (s.empty()) {
    w.Null();
  } else {
    w.String(s.c_str());
  }
}

}  // namespace

StatusReport::StatusReport(const DaemonParts& parts, net::io_context& io)
    : parts_(parts), client_errors_(parts.config.state_dir), timer_(io) {}

std::string StatusReport::Json() const {
  const DaemonParts& p = parts_;
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  WriteProblems(w);
  WriteDaemon(w);
  WriteConfig(w);
  WriteClientErrors(w);
  WriteJournal(w);
  WriteIngest(w);
  if (p.importer) WriteSpool(w);
  if (p.store) WriteStore(w);
  if (p.archive) {
    w.Key("archive");  // docs/protocol.md "Status object"
    p.archive->WriteStatus(w);
  }
  w.Key("sources");  // per source: docs/protocol.md "Status object"
  if (p.store) {
    p.store->source_stats().Write(w, NowNs());
  } else {
    w.StartArray();
    w.EndArray();
  }
  w.Key("sinks");
  w.StartArray();
  for (const auto& sink : p.sinks->sinks()) sink->WriteStatus(w, p.journal->written_seq());
  w.EndArray();
  w.Key("consumers");
  p.retention->WriteConsumers(w);
  w.Key("tails");
  w.Uint64(p.tails->active());
  w.Key("ephemeral");  // docs/protocol.md "Ephemeral events"
  w.StartObject();
  const TailServer::EphemeralCounters& eph = p.tails->ephemeral();
  w.Key("received");
  w.Uint64(eph.received.load());
  w.Key("delivered");
  w.Uint64(eph.delivered.load());
  w.Key("dropped_no_tail");
  w.Uint64(eph.dropped_no_tail.load());
  w.Key("dropped_slow_tail");
  w.Uint64(eph.dropped_slow_tail.load());
  w.EndObject();
  w.Key("lost_events");
  w.Uint64(p.retention->lost_events());
  w.Key("unacked_lost_events");
  w.Uint64(p.retention->unacked_lost());
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

// "healthy" and "problems": one problem per unhealthy part.
void StatusReport::WriteProblems(proto::JsonWriter& w) const {
  const DaemonParts& p = parts_;
  const bool journal_ok = !p.journal->failed();
  const bool store_ok = !p.store || !p.store->counters().failed.load();
  bool sinks_ok = true;
  std::vector<std::string> failing;  // sinks failing for longer than their degraded_after
  for (const auto& sink : p.sinks->sinks()) {
    sinks_ok &= sink->state() != Sink::State::kPaused && sink->deadlettered() == 0;
    if (std::string problem = sink->FailingProblem(); !problem.empty()) {
      failing.push_back(std::move(problem));
    }
  }
  sinks_ok &= failing.empty();
  // Journal damage met by any reader, and read errors being retried (issue 10 #2, #4).
  const std::vector<std::string> read_problems = journal_health::Problems();
  const bool healthy = journal_ok && p.retention->unacked_lost() == 0 && store_ok && sinks_ok &&
                       read_problems.empty() && p.config_health.ok();
  w.Key("healthy");
  w.Bool(healthy);
  w.Key("problems");
  w.StartArray();
  if (!p.config_health.ok()) w.String(p.config_health.Problem(p.source).c_str());
  if (!journal_ok) {
    w.String(("journal refuses appends: " + p.journal->failure().ToString()).c_str());
  }
  if (!store_ok) w.String(("store: " + p.store->error()).c_str());
  for (const std::string& problem : read_problems) w.String(problem.c_str());
  if (p.retention->unacked_lost() > 0) {
    w.String((std::to_string(p.retention->unacked_lost()) +
              " event(s) lost to the journal byte cap (ferry status --ack-lost acknowledges)")
                 .c_str());
  }
  for (const auto& sink : p.sinks->sinks()) {
    if (sink->state() == Sink::State::kPaused) {
      w.String(("sink " + sink->name() + " is paused: " + sink->last_error_text()).c_str());
    }
    if (sink->deadlettered() > 0) {
      w.String(("sink " + sink->name() + " has " + std::to_string(sink->deadlettered()) +
                " dead letter(s) (ferry deadletter list)")
                   .c_str());
    }
  }
  for (const std::string& problem : failing) w.String(problem.c_str());
  w.EndArray();
}

void StatusReport::WriteDaemon(proto::JsonWriter& w) const {
  const Config& config = parts_.config;
  w.Key("daemon");
  w.StartObject();
  w.Key("pid");
  w.Int64(::getpid());
  w.Key("version");
  w.String(FERRY_VERSION);
  w.Key("uptime_s");
  w.Double(SecondsSince(parts_.started));
  w.Key("socket");
  w.String(config.socket_path.c_str());
  w.Key("state_dir");
  w.String(config.state_dir.c_str());
  w.Key("config");
  w.String(config.path.c_str());
  w.EndObject();
}

// "config": whether the file loaded, and what ferryd runs on (docs/protocol.md "Status object").
void StatusReport::WriteConfig(proto::JsonWriter& w) const {
  const ConfigHealth& health = parts_.config_health;
  w.Key("config");
  w.StartObject();
  w.Key("ok");
  w.Bool(health.ok());
  w.Key("file");
  w.String(parts_.source.path.c_str());
  w.Key("running_on");
  w.String(health.RunningOn(parts_.config));
  w.Key("error");
  StringOrNull(w, health.error);
  int line = 0, column = 0;
  health.Place(parts_.source.path, &line, &column);
  w.Key("line");
  if (line > 0) {
    w.Int(line);
  } else {
    w.Null();
  }
  w.Key("column");
  if (column > 0) {
    w.Int(column);
  } else {
    w.Null();
  }
  w.Key("error_time");
  StringOrNull(w, health.error_time_ns ? IsoTimeUtc(health.error_time_ns) : std::string());
  w.Key("problem");
  StringOrNull(w, health.Problem(parts_.source));
  w.Key("restart_pending");
  w.StartArray();
  for (const std::string& change : health.restart_pending) w.String(change.c_str());
  w.EndArray();
  w.EndObject();
}

// "client_errors": what `ferry emit` noted in <state>/client-errors.log (docs/operations.md
// "Spool"). Not a health problem: the events in question were never ferryd's to lose.
void StatusReport::WriteClientErrors(proto::JsonWriter& w) const {
  const ClientErrorLog::Summary& s = client_errors_.Read();
  w.Key("client_errors");
  w.StartObject();
  w.Key("count");
  w.Uint64(s.count);
  w.Key("file");
  w.String(client_errors_.path().c_str());
  w.Key("last");
  StringOrNull(w, s.last);
  w.Key("last_time");
  StringOrNull(w, s.last_time);
  w.Key("last_what");
  StringOrNull(w, s.last_what);
  w.EndObject();
}

void StatusReport::WriteJournal(proto::JsonWriter& w) const {
  const Journal& journal = *parts_.journal;
  const RecoveryReport& recovery = parts_.recovery;
  w.Key("journal");
  w.StartObject();
  w.Key("last_seq");
  w.Uint64(journal.written_seq());
  w.Key("durable_seq");
  w.Uint64(parts_.server->durable_seq());
  w.Key("oldest_seq");
  w.Uint64(journal.oldest_seq());
  w.Key("bytes");
  w.Uint64(journal.total_bytes());
  w.Key("segments");
  w.Uint64(journal.segment_count());
  w.Key("fsync");
  w.String(FsyncPolicyName(parts_.config.fsync));
  w.Key("syncs");
  w.Uint64(parts_.committer->syncs());
  parts_.retention->WriteJournalKeys(w);
  w.Key("recoveries");
  w.Uint64(journal.recoveries());
  w.Key("recovery");
  w.StartObject();
  w.Key("segments_end_seq");  // the last seq the segments held at start
  w.Uint64(recovery.segments_next_seq - 1);
  w.Key("next_seq");
  w.Uint64(recovery.next_seq);
  w.Key("skipped_seqs");
  w.Uint64(recovery.next_seq - recovery.segments_next_seq);
  w.Key("skipped_reason");
  StringOrNull(w, recovery.next_seq == recovery.segments_next_seq ? std::string()
                                                                  : recovery.next_seq_reason);
  w.Key("dropped_bytes");
  w.Uint64(recovery.dropped_bytes);
  w.Key("strays");
  w.StartArray();
  for (const std::string& stray : recovery.strays) w.String(stray.c_str());
  w.EndArray();
  w.EndObject();
  w.Key("healthy");
  w.Bool(!journal.failed());
  w.Key("error");
  StringOrNull(w, journal.failed() ? journal.failure().ToString() : std::string());
  w.EndObject();
}

void StatusReport::WriteIngest(proto::JsonWriter& w) const {
  IngestServer& server = *parts_.server;  // counters() is not const
  const IngestCounters& c = server.counters();
  w.Key("ingest");
  w.StartObject();
  w.Key("events_total");
  w.Uint64(c.events_total);
  w.Key("events_per_s");
  w.Double(EventsPerSecond(c.events_total));
  w.Key("connections");
  w.Uint64(server.connections());
  w.Key("connections_total");
  w.Uint64(c.connections_total);
  w.Key("connections_refused");
  w.Uint64(c.connections_refused);
  w.Key("rejected_total");
  w.Uint64(c.rejected_total);
  w.Key("duplicates_total");
  w.Uint64(c.duplicates_total);
  w.Key("twins_total");  // docs/hooks.md "Which host sent it"
  w.Uint64(c.twins_total);
  w.Key("relabelled_total");
  w.Uint64(c.relabelled_total);
  w.EndObject();
}

void StatusReport::WriteSpool(proto::JsonWriter& w) const {
  const SpoolPending pending = parts_.importer->Pending();
  const SpoolCounters spool = parts_.importer->counters();
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
  w.Uint64(parts_.dedupe->size());
  w.EndObject();
}

void StatusReport::WriteStore(proto::JsonWriter& w) const {
  const StoreCounters& sc = parts_.store->counters();
  const uint64_t cursor = sc.cursor.load();
  const uint64_t written = parts_.journal->written_seq();
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
  StringOrNull(w, read_error);
  w.Key("healthy");
  w.Bool(!sc.failed.load() && read_error.empty());
  w.Key("error");
  StringOrNull(w, parts_.store->error());
  w.EndObject();
}

std::string StatusReport::Line() const {
  const DaemonParts& p = parts_;
  std::string line = std::to_string(p.server->counters().events_total) + " events; last seq " +
                     std::to_string(p.journal->written_seq()) + "; durable seq " +
                     std::to_string(p.server->durable_seq()) + "; " +
                     std::to_string(p.server->connections()) + " connections";
  if (p.journal->failed()) line += "; JOURNAL FAILED: " + p.journal->failure().ToString();
  if (!p.config_health.ok()) line += "; CONFIG ERROR: " + p.config_health.Problem(p.source);
  return line;
}

std::string StatusReport::LivenessProblem(std::chrono::microseconds watchdog_interval) const {
  const DaemonParts& p = parts_;
  if (p.journal->failed()) return "journal refuses appends: " + p.journal->failure().ToString();
  if (auto since = p.committer->SyncInProgressSince()) {
    const auto busy = std::chrono::steady_clock::now() - *since;
    if (busy > watchdog_interval) {
      return "the sync thread has been in one fdatasync for " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(busy).count()) +
             " ms";
    }
  }
  return {};
}

double StatusReport::EventsPerSecond(uint64_t events_total) const {
  if (samples_.size() < 2) return 0;
  const auto& [t0, n0] = samples_.front();
  const double dt = SecondsSince(t0);
  return dt > 0 ? static_cast<double>(events_total - n0) / dt : 0;
}

void StatusReport::StartSampling() { Sample(); }

void StatusReport::Sample() {
  samples_.emplace_back(std::chrono::steady_clock::now(), parts_.server->counters().events_total);
  while (samples_.size() > 11) samples_.pop_front();
  timer_.expires_after(std::chrono::seconds(1));
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (!ec && !stopped_) Sample();
  });
}

void StatusReport::Stop() {
  stopped_ = true;
  timer_.cancel();
}

}  // namespace ferry
