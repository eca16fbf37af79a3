#include "daemon/store/writer.h"

#include <sys/stat.h>
#include <time.h>

#include <map>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>

#include "daemon/journal/reader.h"
#include "daemon/store/schema.h"
#include "proto/event.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMaintenanceEvery = std::chrono::seconds(1);
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);

int64_t NowNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

uint64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

std::string_view Str(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

// Ends a session: the hosts' own end events. (Claude Code and Gemini send SessionEnd; our
// shell snippets send "exit".)
bool IsEndKind(std::string_view kind) {
  return kind == "SessionEnd" || kind == "session_end" || kind == "sessionEnd" || kind == "exit";
}

// A failure where the source says so: a *Failure event (Claude Code's PostToolUseFailure),
// or a non-zero exit status in the payload (shell commands, shell tools of agents).
bool IsFailure(std::string_view kind, const rapidjson::Value* payload) {
  if (kind.size() >= 7 && kind.substr(kind.size() - 7) == "Failure") return true;
  if (!payload || !payload->IsObject()) return false;
  for (const char* key : {"exit_status", "exit_code", "exitCode"}) {
    auto it = payload->FindMember(key);
    if (it != payload->MemberEnd() && it->value.IsNumber() && it->value.GetDouble() != 0) {
      return true;
    }
  }
  return false;
}

// One session's share of a batch.
struct SessionDelta {
  int64_t first_ts = INT64_MAX;
  int64_t last_ts = INT64_MIN;
  int64_t end_ts = INT64_MIN;  // latest end event, if any
  int64_t events = 0;
  int64_t failures = 0;
  std::map<std::string, int64_t> kinds;
};

std::string KindsJson(const std::map<std::string, int64_t>& kinds) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  w.StartObject();
  for (const auto& [k, n] : kinds) {
    w.Key(k.data(), static_cast<rapidjson::SizeType>(k.size()));
    w.Int64(n);
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

void ParseKinds(const std::string& text, std::map<std::string, int64_t>* kinds) {
  rapidjson::Document doc;
  proto::Error ignored;
  if (!proto::ParseJson(text, &doc, &ignored) || !doc.IsObject()) return;
  for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
    if (it->value.IsInt64()) {
      (*kinds)[std::string(it->name.GetString(), it->name.GetStringLength())] +=
          it->value.GetInt64();
    }
  }
}

void MergeSession(SQLite::Database& db, const std::string& source, const std::string& session,
                  SessionDelta d) {
  SQLite::Statement get(db,
                        "SELECT first_ts, last_ts, events, kinds, failures, ended, end_reason "
                        "FROM sessions WHERE source = ? AND session = ?");
  get.bind(1, source);
  get.bind(2, session);
  int64_t ended = INT64_MIN;
  std::string reason;
  if (get.executeStep()) {
    d.first_ts = std::min(d.first_ts, get.getColumn(0).getInt64());
    const int64_t old_last = get.getColumn(1).getInt64();
    d.events += get.getColumn(2).getInt64();
    ParseKinds(get.getColumn(3).getString(), &d.kinds);
    d.failures += get.getColumn(4).getInt64();
    if (!get.getColumn(5).isNull()) {
      ended = get.getColumn(5).getInt64();
      reason = get.getColumn(6).getString();
    }
    // An idle-closed session that speaks again was not over after all.
    if (reason == "idle" && d.last_ts > old_last) ended = INT64_MIN;
    d.last_ts = std::max(d.last_ts, old_last);
  }
  if (d.end_ts != INT64_MIN) {
    ended = std::max(ended == INT64_MIN ? d.end_ts : ended, d.end_ts);
    reason = "end";
  }
  SQLite::Statement put(db,
                        "INSERT OR REPLACE INTO sessions(source, session, first_ts, last_ts, "
                        "events, kinds, failures, ended, end_reason) VALUES(?,?,?,?,?,?,?,?,?)");
  put.bind(1, source);
  put.bind(2, session);
  put.bind(3, d.first_ts);
  put.bind(4, d.last_ts);
  put.bind(5, d.events);
  put.bind(6, KindsJson(d.kinds));
  put.bind(7, d.failures);
  if (ended == INT64_MIN) {
    put.bind(8);
    put.bind(9);
  } else {
    put.bind(8, ended);
    put.bind(9, reason);
  }
  put.exec();
}

}  // namespace

struct StoreWriter::Batch {
  std::vector<JournalRecord> records;
  uint64_t end_cursor = 0;  // reader's position: records and skipped seqs up to here
  uint64_t skipped = 0;     // seqs the reader skipped (damage, deleted segments) in this batch
  std::chrono::milliseconds read_backoff{0};  // > 0: the last read failed; retry after this
};

StoreWriter::StoreWriter(StoreOptions options, JournalProgress& progress,
                         ConsumerRegistry::Slot* slot)
    : options_(std::move(options)), progress_(progress), slot_(slot) {}

StoreWriter::~StoreWriter() { Join(); }

Status StoreWriter::Open(uint64_t journal_written) {
  try {
    bool created = false;
    std::string moved, reason;
    db_ = store::OpenForWriting(options_.db_path, &created, &moved, &reason);
    if (!moved.empty()) {
      spdlog::error("{} is damaged ({}); moved it aside to {} and rebuilding it from the journal",
                    options_.db_path, reason, moved);
    }
    uint64_t cursor = store::ReadCursor(*db_);
    if (cursor > journal_written) {
      // The db has applied seqs the journal no longer holds (a cut tail, a lost segment, a
      // replaced journal directory). Its rows are kept: ferryd opens the journal above this
      // cursor (Journal::Options::min_next_seq), so none of its seqs is handed out again.
      counters_.beyond_journal.store(cursor - journal_written);
      spdlog::warn(
          "{} has applied up to seq {} but the journal ends at seq {}: keeping its rows; the "
          "journal continues above seq {}",
          options_.db_path, cursor, journal_written, cursor);
    }
    counters_.cursor.store(cursor);
    {
      SQLite::Statement count(*db_, "SELECT count(*) FROM events");
      if (count.executeStep())
        counters_.rows.store(static_cast<uint64_t>(count.getColumn(0).getInt64()));
    }
    if (cursor < journal_written && (created || cursor == 0)) {
      counters_.rebuilding.store(true);
      counters_.rebuild_from.store(cursor);
      counters_.rebuild_target.store(journal_written);
      spdlog::info("rebuilding {} from the journal: {} event(s) to apply", options_.db_path,
                   journal_written - cursor);
    }
    UpdateDbBytes();
  } catch (const std::exception& e) {
    db_.reset();
    Status s = Status::IOError("cannot open " + options_.db_path + ": " + e.what());
    SetError(s.ToString());
    return s;
  }
  if (slot_) slot_->cursor.store(counters_.cursor.load());
  return Status::Ok();
}

void StoreWriter::Start() {
  thread_ = std::thread([this] {
    if (!db_ && !OpenWithRetry()) return;
    Run();
  });
}

// ferry.db could not be opened at start (a full disk, say): ferryd serves ingest anyway,
// status shows the store failed, and this retries with a backoff (1 s doubling to 30 s)
// until it opens, then the store catches up from its cursor.
bool StoreWriter::OpenWithRetry() {
  auto backoff = std::chrono::milliseconds(1000);
  for (;;) {
    if (progress_.stopped()) return false;
    Status s = Open(progress_.written());
    if (s.ok()) {
      spdlog::info("store {}: opened after a failure; applied up to seq {}; catching up",
                   options_.db_path, cursor());
      SetError("");
      return true;
    }
    SetError(s.ToString());
    progress_.WaitBeyond(UINT64_MAX, backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(30000));
  }
}

void StoreWriter::Join() {
  if (thread_.joinable()) thread_.join();
}

std::string StoreWriter::error() const {
  {
    std::lock_guard lock(error_mu_);
    if (!error_.empty()) return error_;
  }
  return journal_health::IoError("store");  // a journal read that is being retried
}

void StoreWriter::SetError(const std::string& message) {
  std::lock_guard lock(error_mu_);
  error_ = message;
  counters_.failed.store(!message.empty());
}

void StoreWriter::UpdateDbBytes() {
  counters_.db_bytes.store(FileBytes(options_.db_path) + FileBytes(options_.db_path + "-wal"));
}

void StoreWriter::Fill(Batch* batch, uint64_t limit) {
  if (!reader_)
    reader_ = std::make_unique<JournalReader>(options_.journal_dir, counters_.cursor.load() + 1);
  JournalRecord rec;
  batch->read_backoff = std::chrono::milliseconds(0);
  while (batch->records.size() < options_.batch_events) {
    const uint64_t skipped_before = reader_->skipped_seqs();
    const auto r = reader_->Next(limit, &rec);
    batch->skipped += reader_->skipped_seqs() - skipped_before;
    const auto backoff = journal_health::Observe("store", r, *reader_);
    if (r == JournalReader::Result::kEnd) break;
    if (r == JournalReader::Result::kIOError) {
      // Nothing was skipped: the cursor stays before the unread record, and Run() retries.
      batch->read_backoff = backoff;
      break;
    }
    if (r == JournalReader::Result::kCorruption) continue;  // logged and listed by Observe
    batch->records.push_back(std::move(rec));
    rec = JournalRecord{};
  }
  batch->end_cursor = reader_->next_seq() - 1;
}

Status StoreWriter::Commit(Batch* batch) {
  const auto t0 = Clock::now();
  uint64_t inserted = 0, duplicates = 0, malformed = 0;
  try {
    SQLite::Transaction txn(*db_);
    SQLite::Statement ins(*db_,
                          "INSERT INTO events(seq, id, ts, received, source, kind, session, cwd, "
                          "host, pid, payload) VALUES(?,?,?,?,?,?,?,?,?,?,?) "
                          "ON CONFLICT(id) DO NOTHING");
    std::map<std::pair<std::string, std::string>, SessionDelta> sessions;
    rapidjson::Document doc;
    std::vector<proto::PayloadSpan> spans;
    for (const JournalRecord& rec : batch->records) {
      proto::Error perr;
      // The payload column gets the payload's bytes from the record, not a re-serialised
      // document: numbers keep every digit (docs/protocol.md "Event envelope").
      if (!proto::ParseEnvelopes(rec.body, 1, &doc, &spans, &perr) || !doc.IsObject() ||
          spans.size() != 1 || Str(doc, "id").empty()) {
        ++malformed;
        continue;
      }
      const std::string_view id = Str(doc, "id"), source = Str(doc, "source"),
                             kind = Str(doc, "kind"), session = Str(doc, "session");
      auto ts_it = doc.FindMember("ts");
      const int64_t ts =
          ts_it != doc.MemberEnd() && ts_it->value.IsInt64() ? ts_it->value.GetInt64() : 0;
      auto pid_it = doc.FindMember("pid");
      auto payload_it = doc.FindMember("payload");
      const rapidjson::Value* payload =
          payload_it != doc.MemberEnd() ? &payload_it->value : nullptr;
      ins.reset();
      ins.clearBindings();
      ins.bind(1, static_cast<int64_t>(rec.seq));
      ins.bind(2, std::string(id));
      ins.bind(3, ts);
      ins.bind(4, rec.received_ns);
      ins.bind(5, std::string(source));
      ins.bind(6, std::string(kind));
      if (!session.empty()) ins.bind(7, std::string(session));
      const std::string_view cwd = Str(doc, "cwd"), host = Str(doc, "host");
      if (!cwd.empty()) ins.bind(8, std::string(cwd));
      if (!host.empty()) ins.bind(9, std::string(host));
      if (pid_it != doc.MemberEnd() && pid_it->value.IsInt64())
        ins.bind(10, pid_it->value.GetInt64());
      if (payload && spans[0].present()) {
        ins.bind(11, proto::CompactJson(std::string_view(rec.body).substr(
                         spans[0].begin, spans[0].end - spans[0].begin)));
      }
      if (ins.exec() == 0) {
        ++duplicates;  // the same event id came twice (spool replay): keep the first
        continue;
      }
      ++inserted;
      if (session.empty()) continue;
      SessionDelta& d = sessions[{std::string(source), std::string(session)}];
      d.first_ts = std::min(d.first_ts, ts);
      d.last_ts = std::max(d.last_ts, ts);
      d.events++;
      d.kinds[std::string(kind)]++;
      if (IsFailure(kind, payload)) d.failures++;
      if (IsEndKind(kind)) d.end_ts = std::max(d.end_ts, ts);
    }
    for (auto& [key, delta] : sessions) MergeSession(*db_, key.first, key.second, std::move(delta));
    SQLite::Statement cursor(*db_, "INSERT OR REPLACE INTO meta(key, value) VALUES('cursor', ?)");
    cursor.bind(1, static_cast<int64_t>(batch->end_cursor));
    cursor.exec();
    txn.commit();
  } catch (const std::exception& e) {
    return Status::IOError("store commit of seqs up to " + std::to_string(batch->end_cursor) +
                           " failed: " + e.what());
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  counters_.cursor.store(batch->end_cursor);
  if (slot_) slot_->cursor.store(batch->end_cursor);
  counters_.rows.fetch_add(inserted);
  counters_.duplicates.fetch_add(duplicates);
  counters_.malformed.fetch_add(malformed);
  counters_.skipped_seqs.fetch_add(batch->skipped);
  batch->skipped = 0;
  counters_.last_batch_events.store(batch->records.size());
  counters_.last_batch_us.store(static_cast<uint64_t>(us));
  counters_.batches.fetch_add(1);
  if (malformed > 0)
    spdlog::warn("store: skipped {} journal record(s) that are not events", malformed);
  MaybeLogRebuild(batch->end_cursor);
  batch->records.clear();
  return Status::Ok();
}

void StoreWriter::MaybeLogRebuild(uint64_t committed) {
  if (!counters_.rebuilding.load()) return;
  const uint64_t target = counters_.rebuild_target.load();
  const uint64_t from = counters_.rebuild_from.load();
  if (committed >= target) {
    counters_.rebuilding.store(false);
    spdlog::info("rebuild of {} done: {} event(s) applied", options_.db_path, committed - from);
    return;
  }
  if (committed - from >= last_rebuild_log_ + options_.rebuild_log_every) {
    last_rebuild_log_ = committed - from;
    spdlog::info(
        "rebuilding {}: {} of {} events ({:.0f}%)", options_.db_path, committed - from,
        target - from,
        100.0 * static_cast<double>(committed - from) / static_cast<double>(target - from));
  }
}

Status StoreWriter::CloseIdleSessions() {
  const int64_t cutoff =
      NowNs() - static_cast<int64_t>(options_.session_idle_timeout.count()) * 1000000;
  try {
    SQLite::Statement close(*db_,
                            "UPDATE sessions SET ended = last_ts, end_reason = 'idle' "
                            "WHERE ended IS NULL AND last_ts < ?");
    close.bind(1, cutoff);
    close.exec();
  } catch (const std::exception& e) {
    return Status::IOError(std::string("closing idle sessions failed: ") + e.what());
  }
  return Status::Ok();
}

// Deletes at most retain_batch old rows per call, so the write lock is held briefly; the
// caller comes back for more. Sessions keep their aggregates.
Status StoreWriter::ApplyRetention() {
  if (options_.retain_rows == 0 && options_.retain_age.count() == 0) return Status::Ok();
  try {
    uint64_t deleted = 0;
    const uint64_t rows = counters_.rows.load();
    if (options_.retain_rows > 0 && rows > options_.retain_rows) {
      SQLite::Statement del(*db_,
                            "DELETE FROM events WHERE seq IN "
                            "(SELECT seq FROM events ORDER BY seq LIMIT ?)");
      del.bind(1,
               static_cast<int64_t>(std::min(rows - options_.retain_rows, options_.retain_batch)));
      deleted += static_cast<uint64_t>(del.exec());
    }
    if (options_.retain_age.count() > 0) {
      const int64_t cutoff = NowNs() - static_cast<int64_t>(options_.retain_age.count()) * 1000000;
      // received grows with seq (the daemon sets both), so the oldest rows are the lowest seqs.
      SQLite::Statement del(*db_,
                            "DELETE FROM events WHERE seq <= (SELECT max(seq) FROM "
                            "(SELECT seq, received FROM events ORDER BY seq LIMIT ?) "
                            "WHERE received < ?)");
      del.bind(1, static_cast<int64_t>(options_.retain_batch));
      del.bind(2, cutoff);
      deleted += static_cast<uint64_t>(del.exec());
    }
    counters_.rows.fetch_sub(std::min(deleted, counters_.rows.load()));
    counters_.retained_deleted.fetch_add(deleted);
    if (deleted >= options_.retain_batch) next_maintenance_ = Clock::now();  // more to do
  } catch (const std::exception& e) {
    return Status::IOError(std::string("events retention failed: ") + e.what());
  }
  return Status::Ok();
}

Status StoreWriter::TEST_DrainOnce() {
  const uint64_t limit = progress_.written();
  while (true) {
    Batch batch;
    Fill(&batch, limit);
    if (batch.records.empty() && batch.end_cursor <= counters_.cursor.load()) break;
    Status s = Commit(&batch);
    if (!s.ok()) {
      reader_.reset();
      return s;
    }
  }
  Status s = CloseIdleSessions();
  if (!s.ok()) return s;
  s = ApplyRetention();
  UpdateDbBytes();
  return s;
}

// The one path for start-up catch-up, rebuild and steady state: read from the cursor; commit
// when the batch is full, or when batch_interval has passed since the last commit. So a lone
// event after a quiet spell commits at once (low latency from emit to query) and a steady
// stream commits at most once per interval unless batches fill (throughput): group commit
// without a timer that makes a lone event wait. After a failed commit the batch is dropped
// and re-read from the committed cursor, so nothing is applied twice.
void StoreWriter::Run() {
  Batch batch;
  while (true) {
    const bool stopping = progress_.stopped();
    const uint64_t written = progress_.written();
    Fill(&batch, written);
    const bool caught_up = reader_->next_seq() > written;
    const bool full = batch.records.size() >= options_.batch_events;
    const bool due =
        !batch.records.empty() && Clock::now() - last_commit_ >= options_.batch_interval;
    const bool skipped_only = batch.records.empty() && batch.end_cursor > counters_.cursor.load();
    if (full || due || stopping || skipped_only || (!caught_up && !batch.records.empty())) {
      if (!batch.records.empty() || batch.end_cursor > counters_.cursor.load()) {
        Status s = Commit(&batch);
        if (!s.ok()) {
          if (!counters_.failed.load()) spdlog::error("{}; retrying", s.ToString());
          SetError(s.ToString());
          batch = Batch{};
          reader_.reset();
          if (stopping) return;
          progress_.WaitBeyond(UINT64_MAX, std::chrono::duration_cast<std::chrono::milliseconds>(
                                               kRetryAfterFailure));
          continue;
        }
        last_commit_ = Clock::now();
        if (counters_.failed.load()) {
          spdlog::info("store: commits succeed again");
          SetError("");
        }
        UpdateDbBytes();
      }
      if (stopping) return;
    }
    if (Clock::now() >= next_maintenance_) {
      next_maintenance_ = Clock::now() + kMaintenanceEvery;
      Status s = CloseIdleSessions();
      if (s.ok()) s = ApplyRetention();
      if (!s.ok()) spdlog::warn("store: {}", s.ToString());
      UpdateDbBytes();
    }
    if (batch.read_backoff.count() > 0 && batch.records.empty()) {
      // A journal read failed (issue 10 #2): wait, then read the same record again.
      progress_.WaitBeyond(UINT64_MAX, batch.read_backoff);
      continue;
    }
    if (!caught_up && batch.records.empty()) continue;  // backlog: next batch at once
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaintenanceEvery);
    if (!batch.records.empty()) {
      const auto left = last_commit_ + options_.batch_interval - Clock::now();
      wait = std::max(std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(left) +
                          std::chrono::milliseconds(1));
      if (wait.count() == 0) continue;
    }
    progress_.WaitBeyond(reader_->next_seq() - 1, wait);
  }
}

}  // namespace ferry
