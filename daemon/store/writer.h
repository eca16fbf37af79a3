// StoreWriter: the journal's first consumer. Keeps ferry.db (SQLite, WAL) in step with the
// journal: reads records with its own JournalReader from its cursor up to
// JournalProgress::written(), and writes them in batches (by count, and at most one commit
// per batch_interval unless a batch fills), one transaction per batch holding the event rows,
// their search text (the FTS5 index `search`, unless [store] search = false; search_text.h),
// the session aggregates and the new cursor (meta.cursor), so every journal record lands
// exactly once across crashes. Each record is read once (store::ScanRecord, record_scan.h;
// the full parser only for what it leaves), with statements prepared once per connection; the
// session rollup is session_rollup.h. After a catch-up, once idle, the writer hands back its
// memory (page cache, batch buffers, malloc_trim). Schema and migrations:
// daemon/store/schema.h.
//
// Threads: Open() on the starting thread (it may rebuild or move aside a damaged db). Start()
// spawns the store thread, which owns the only write connection until Join(). counters() may
// be read from any thread (atomics; error() takes a leaf lock).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "daemon/base/status.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/journal/progress.h"
#include "daemon/store/source_stats.h"
#include "daemon/store/transcript_feed.h"

namespace SQLite {
class Database;
}

namespace ferry {

struct JournalRecord;
namespace store {
struct ScannedEnvelope;
}

struct StoreOptions {
  std::string db_path;      // <state>/ferry.db
  std::string journal_dir;  // <state>/journal
  std::chrono::milliseconds batch_interval{200};
  uint64_t batch_events = 1000;
  std::chrono::milliseconds session_idle_timeout{30 * 60 * 1000};
  std::chrono::milliseconds retain_age{0};  // 0: keep every row
  uint64_t retain_rows = 0;                 // 0: no row cap
  uint64_t retain_batch = 1000;             // rows deleted per retention transaction
  uint64_t rebuild_log_every = 100000;      // log rebuild progress every N events
  bool search = true;  // [store] search: keep the full-text index (store::SetSearch)
  // The transcript archive (transcript_rows.h): called after a commit for each trigger event
  // the batch held (empty: none collected); the inbox's messages are inserted in each
  // transaction (null: none).
  std::function<void(TranscriptTrigger)> on_transcript;
  TranscriptInbox* transcript_inbox = nullptr;
};

// Figures for `ferry status`. Written by the store thread, read by anyone.
struct StoreCounters {
  std::atomic<uint64_t> cursor{0};  // last seq committed to ferry.db
  std::atomic<uint64_t> db_bytes{0};
  std::atomic<uint64_t> last_batch_events{0};
  std::atomic<uint64_t> last_batch_us{0};
  std::atomic<uint64_t> rows{0};        // rows in events
  std::atomic<uint64_t> duplicates{0};  // records whose id was already stored
  std::atomic<uint64_t> malformed{0};   // records whose body is not an envelope (skipped)
  // Seqs the journal reader could not deliver (damaged segments, segments deleted first):
  // committed past, never stored. Each is logged and listed in status problems.
  std::atomic<uint64_t> skipped_seqs{0};
  std::atomic<uint64_t> batches{0};
  std::atomic<uint64_t> retained_deleted{0};
  std::atomic<bool> rebuilding{false};
  std::atomic<uint64_t> rebuild_from{0};    // cursor when the rebuild began
  std::atomic<uint64_t> rebuild_target{0};  // written seq when the rebuild began
  std::atomic<bool> failed{false};
  // Seqs ferry.db had applied beyond the journal's end when it was opened (rows kept).
  std::atomic<uint64_t> beyond_journal{0};
};

class StoreWriter {
 public:
  // `progress` and `slot` must outlive the writer; `slot` is the registry's "store" slot.
  StoreWriter(StoreOptions options, JournalProgress& progress, ConsumerRegistry::Slot* slot);
  ~StoreWriter();
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Opens ferry.db, moving a damaged one aside (ferry.db.corrupt-<timestamp>, with its -wal
  // and -shm) and creating a fresh one, then runs the migrations and reads the cursor.
  // `journal_written` is the journal's last seq, to tell whether a rebuild is under way. A db
  // whose cursor is beyond it keeps its rows (counters().beyond_journal says by how much).
  // A db that cannot be opened for another reason (disk full, permissions) is left as it is
  // and Open fails; the caller retries.
  Status Open(uint64_t journal_written);
  // The cursor read by Open(): the consumer slot should be registered with it.
  uint64_t cursor() const { return counters_.cursor.load(); }

  // Starts the store thread (which first retries Open() until it succeeds, if it failed). It runs
  // until progress.Stop(), then commits the batch it has gathered and returns; Join() waits for
  // that.
  void Start();
  void Join();

  const StoreCounters& counters() const { return counters_; }
  // Per-source figures for status (`sources`): seeded by Open(), added to after each commit.
  const store::SourceStats& source_stats() const { return source_stats_; }
  // The last commit failure, empty once a commit succeeds again; else the journal read error
  // being retried (journal_health), empty once a read succeeds.
  std::string error() const;

  // Single-threaded test hook: reads and commits everything up to progress.written() now.
  Status TEST_DrainOnce();

 private:
  struct Batch;
  struct Prepared;  // statements and scratch buffers, made on the first commit
  void Run();
  bool OpenWithRetry();  // store thread; false when stopped first
  // Reads records into *batch until it is full or the reader is at `limit`.
  void Fill(Batch* batch, uint64_t limit);
  Status Commit(Batch* batch);
  bool InsertOne(const JournalRecord& rec, const store::ScannedEnvelope& e);
  // After a catch-up, once idle: frees the page cache, batch buffers and malloc's free pages.
  void TrimMemory(Batch* batch);
  Status CloseIdleSessions();
  Status ApplyRetention();
  void SetError(const std::string& message);
  void UpdateDbBytes();
  void MaybeLogRebuild(uint64_t committed);

  const StoreOptions options_;
  JournalProgress& progress_;
  ConsumerRegistry::Slot* const slot_;
  std::unique_ptr<SQLite::Database> db_;
  std::unique_ptr<Prepared> prepared_;  // after db_: its statements are finalized first
  std::unique_ptr<class JournalReader> reader_;
  StoreCounters counters_;
  store::SourceStats source_stats_;
  std::thread thread_;
  uint64_t last_rebuild_log_ = 0;
  std::chrono::steady_clock::time_point next_maintenance_{};
  std::chrono::steady_clock::time_point last_commit_{};  // store thread only
  uint64_t events_since_trim_ = 0;                       // store thread only
  mutable Mutex error_mu_;                               // leaf lock; guards error_ only
  std::string error_ FERRY_GUARDED_BY(error_mu_);
};

}  // namespace ferry
