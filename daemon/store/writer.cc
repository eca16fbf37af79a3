#include "daemon/store/writer.h"
#include "daemon/base/file_util.h"
#include "daemon/base/thread_role.h"

#include <malloc.h>
#include <sys/stat.h>
#include <time.h>

#include <map>
#include <unordered_map>
#include <utility>
#include <vector>

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>

#include "daemon/journal/reader.h"
#include "daemon/store/raw_statement.h"
#include "daemon/store/record_scan.h"
#include "daemon/store/schema.h"
#include "daemon/store/search_text.h"
#include "daemon/store/session_rollup.h"
#include "daemon/store/transcript_rows.h"
#include "proto/event.h"

namespace ferry {
namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kMaintenanceEvery = std::chrono::seconds(1);
constexpr auto kRetryAfterFailure = std::chrono::seconds(1);
// After a catch-up of at least this many events, the idle store thread hands its memory back
// (page cache, batch buffers, malloc's free pages).
constexpr uint64_t kTrimAfterEvents = 10000;

uint64_t FileBytes(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

using store::IsEndKind;
using store::IsFailureKind;
using store::MergeSession;
using store::RawStatement;
using store::SessionDelta;

}  // namespace

// The statements the store thread runs for every batch, prepared once per connection.
struct StoreWriter::Prepared {
  Prepared(sqlite3* db, bool search_on)
      : insert(db,
               "INSERT INTO events(seq, id, ts, received, source, kind, session, cwd, host, pid, "
               "payload) VALUES(?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT(id) DO NOTHING"),
        get_session(db,
                    "SELECT first_ts, last_ts, events, kinds, failures, ended, end_reason "
                    "FROM sessions WHERE source = ? AND session = ?"),
        put_session(db,
                    "INSERT OR REPLACE INTO sessions(source, session, first_ts, last_ts, "
                    "events, kinds, failures, ended, end_reason) VALUES(?,?,?,?,?,?,?,?,?)"),
        cursor(db, "INSERT OR REPLACE INTO meta(key, value) VALUES('cursor', ?)"),
        search(db, search_on),
        transcripts(db) {}
  RawStatement insert, get_session, put_session, cursor;
  store::SearchIndexer search;        // the event's row in the full-text index
  store::TranscriptRows transcripts;  // the transcript archive's triggers and messages
  // Scratch reused across batches (the store thread's only allocations per event are the
  // session map's new keys).
  rapidjson::Document doc;
  std::vector<proto::PayloadSpan> spans;
  std::string compact;  // a payload without its whitespace, when the record had some
  std::string key;      // sessions' lookup key
  std::unordered_map<std::string, SessionDelta> sessions;
  store::SourceBatch sources;  // the batch's share per source (status `sources`)
};

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
  prepared_.reset();
  try {
    bool created = false;
    std::string moved, reason;
    db_ = store::OpenForWriting(options_.db_path, &created, &moved, &reason);
    if (!moved.empty()) {
      spdlog::error("{} is damaged ({}); moved it aside to {} and rebuilding it from the journal",
                    options_.db_path, reason, moved);
    }
    store::SetSearch(*db_, options_.search);
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
    source_stats_.Seed(*db_, NowNs());
    UpdateDbBytes();
  } catch (const std::exception& e) {
    prepared_.reset();
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
    SetThreadRole("store", ThreadClass::kBackground);
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
    MutexLock lock(error_mu_);
    if (!error_.empty()) return error_;
  }
  return journal_health::IoError("store");  // a journal read that is being retried
}

void StoreWriter::SetError(const std::string& message) {
  MutexLock lock(error_mu_);
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

// One event's row and its session's share; false: the id was already stored.
bool StoreWriter::InsertOne(const JournalRecord& rec, const store::ScannedEnvelope& e) {
  RawStatement& ins = prepared_->insert;
  ins.Reset();
  ins.Int64(1, static_cast<int64_t>(rec.seq));
  ins.Text(2, e.id);
  ins.Int64(3, e.ts);
  ins.Int64(4, rec.received_ns);
  ins.Text(5, e.source);
  ins.Text(6, e.kind);
  if (!e.session.empty()) ins.Text(7, e.session);
  if (!e.cwd.empty()) ins.Text(8, e.cwd);
  if (!e.host.empty()) ins.Text(9, e.host);
  if (e.has_pid) ins.Int64(10, e.pid);
  if (e.has_payload) {
    if (e.payload_compact) {
      ins.Text(11, e.payload);
    } else {
      prepared_->compact = proto::CompactJson(e.payload);
      ins.Text(11, prepared_->compact);
    }
  }
  ins.Step();
  const bool fresh = ins.Changes() > 0;
  ins.Reset();
  if (!fresh) return false;  // the same event id came twice (spool replay)
  prepared_->search.Add(static_cast<int64_t>(rec.seq), e.kind, e.payload);
  if (options_.on_transcript) prepared_->transcripts.Collect(e);
  prepared_->sources.Add(e.source, e.ts, e.kind, e.session,
                         IsFailureKind(e.kind) || e.payload_failure, e.payload);
  if (e.session.empty()) return true;
  std::string& key = prepared_->key;
  key.assign(std::to_string(e.source.size())).append(":").append(e.source).append(e.session);
  auto it = prepared_->sessions.find(key);
  if (it == prepared_->sessions.end()) {
    it = prepared_->sessions.emplace(key, SessionDelta{}).first;
    it->second.source.assign(e.source);
    it->second.session.assign(e.session);
  }
  SessionDelta& d = it->second;
  d.first_ts = std::min(d.first_ts, e.ts);
  d.last_ts = std::max(d.last_ts, e.ts);
  d.events++;
  auto kind = d.kinds.find(e.kind);
  if (kind == d.kinds.end()) kind = d.kinds.emplace(std::string(e.kind), 0).first;
  kind->second++;
  if (IsFailureKind(e.kind) || e.payload_failure) d.failures++;
  if (IsEndKind(e.kind)) d.end_ts = std::max(d.end_ts, e.ts);
  return true;
}

Status StoreWriter::Commit(Batch* batch) {
  const auto t0 = Clock::now();
  uint64_t inserted = 0, duplicates = 0, malformed = 0;
  try {
    if (!prepared_) prepared_ = std::make_unique<Prepared>(db_->getHandle(), options_.search);
    prepared_->sessions.clear();
    prepared_->sources.Begin(NowNs());
    SQLite::Transaction txn(*db_);
    store::ScannedEnvelope e;
    for (const JournalRecord& rec : batch->records) {
      // One pass over the record's bytes; the full parser only for what the scan leaves.
      if (!store::ScanRecord(rec.body, &e) &&
          !store::ParseRecordSlow(rec.body, &prepared_->doc, &prepared_->spans, &e)) {
        ++malformed;
        continue;
      }
      if (InsertOne(rec, e)) {
        ++inserted;
      } else {
        ++duplicates;  // keep the first
      }
    }
    for (auto& [key, delta] : prepared_->sessions) {
      int64_t opened = 0;
      MergeSession(prepared_->get_session, prepared_->put_session, delta, &opened);
      if (opened != 0) prepared_->sources.deltas[delta.source].opened += opened;
    }
    prepared_->sessions.clear();
    RawStatement& cursor = prepared_->cursor;
    cursor.Reset();
    cursor.Int64(1, static_cast<int64_t>(batch->end_cursor));
    cursor.Step();
    cursor.Reset();
    prepared_->transcripts.InsertFrom(options_.transcript_inbox, &prepared_->search);
    txn.commit();
  } catch (const std::exception& e) {
    if (prepared_) prepared_->transcripts.Abort(options_.transcript_inbox);
    if (prepared_) prepared_->sessions.clear();
    return Status::IOError("store commit of seqs up to " + std::to_string(batch->end_cursor) +
                           " failed: " + e.what());
  }
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
  source_stats_.Apply(prepared_->sources.deltas, prepared_->sources.day);
  prepared_->transcripts.Post(options_.on_transcript);
  counters_.cursor.store(batch->end_cursor);
  if (slot_) slot_->cursor.store(batch->end_cursor);
  counters_.rows.fetch_add(inserted);
  events_since_trim_ += batch->records.size();
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
                            "WHERE ended IS NULL AND last_ts < ? RETURNING source");
    close.bind(1, cutoff);
    store::SourceBatch closed;
    closed.Begin(NowNs());
    while (close.executeStep()) closed.deltas[close.getColumn(0).getString()].opened--;
    if (!closed.deltas.empty()) source_stats_.Apply(closed.deltas, closed.day);
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
    const bool messages = options_.transcript_inbox && !options_.transcript_inbox->empty();
    if (full || due || stopping || skipped_only || messages ||
        (!caught_up && !batch.records.empty())) {
      if (!batch.records.empty() || batch.end_cursor > counters_.cursor.load() || messages) {
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
    const uint64_t read_to = reader_->next_seq() - 1;
    if (batch.records.empty() && events_since_trim_ >= kTrimAfterEvents) TrimMemory(&batch);
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(kMaintenanceEvery);
    uint64_t more = 1;  // an empty batch: the next event commits at once
    if (!batch.records.empty()) {
      const auto left = last_commit_ + options_.batch_interval - Clock::now();
      wait = std::max(std::chrono::milliseconds(0),
                      std::chrono::duration_cast<std::chrono::milliseconds>(left) +
                          std::chrono::milliseconds(1));
      if (wait.count() == 0) continue;
      // A batch in hand commits when it is full or its interval ends: until the records that
      // fill it are written, the io thread need not wake this thread for every flush.
      if (batch.records.size() < options_.batch_events) {
        more = options_.batch_events - batch.records.size();
      }
    }
    progress_.WaitBeyond(read_to, wait, more);
  }
}

// Called when the store has caught up after a burst (kTrimAfterEvents): what it held for the
// burst goes back to the system, so ferryd's idle RSS does not keep the peak. The next event
// reopens the journal segment and re-reads the db pages it needs.
void StoreWriter::TrimMemory(Batch* batch) {
  events_since_trim_ = 0;
  std::vector<JournalRecord>().swap(batch->records);
  if (prepared_) {
    std::string().swap(prepared_->compact);
    prepared_->search.Trim();
    prepared_->doc.SetNull();
    rapidjson::Document().Swap(prepared_->doc);
    std::unordered_map<std::string, SessionDelta>().swap(prepared_->sessions);
  }
  if (reader_ && reader_->next_seq() - 1 == counters_.cursor.load()) reader_.reset();
  if (db_) sqlite3_db_release_memory(db_->getHandle());
  ::malloc_trim(0);
}

}  // namespace ferry
