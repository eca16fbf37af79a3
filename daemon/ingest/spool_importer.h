// SpoolImporter: moves events that `ferry emit` spooled while ferryd was down or hung
// (<state_dir>/spool, docs/protocol.md "Spool") into the journal.
//
// Imports at Start() and whenever inotify reports a complete spool file (a rename to
// *.ndjson), plus a rescan every few seconds for files inotify could not announce (a writer
// killed before its rename leaves a .tmp file; an inotify queue overflow). Each line is
// validated like an EVENT frame body; ids already in the DedupeWindow are skipped. A file is
// removed only after the journal reports every record it gave as durable (OnDurable). A torn
// last line is skipped and counted; a file with an invalid line is kept as <name>.rejected.
//
// Hostile spool entries (docs/operations.md "Spool"): every spool file is opened with
// O_NONBLOCK|O_NOFOLLOW and fstat'ed; only regular files owned by ferryd's user are read.
// Anything else (a FIFO, a symlink, a directory, a device, a file of another uid) is renamed
// to <name>.rejected without being read, with one log line naming it and why.
//
// Threads: every spool file operation (list, open, read, rename, unlink, fsync of the
// directory) runs on the importer's own thread, never on the io thread, so a slow, huge or
// hostile file cannot stall ingest or `ferry status`. The importer thread hands parsed events
// to the io thread in bounded chunks (net::post); the io thread alone checks the
// DedupeWindow and appends to the journal. Start, Stop, OnDurable and SetLocalRedactor are
// for the io thread; Pending and counters may be called from any thread (atomics).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "daemon/base/asio.h"
#include "daemon/base/status.h"
#include "daemon/base/thread_annotations.h"
#include "daemon/ingest/admit.h"
#include "daemon/ingest/dedupe_window.h"
#include "daemon/journal/committer.h"
#include "daemon/journal/journal.h"

namespace ferry {

struct SpoolCounters {
  uint64_t files_imported = 0;   // removed after their events were durable
  uint64_t events_imported = 0;  // appended to the journal
  uint64_t duplicates = 0;       // skipped: the id was already in the journal
  uint64_t torn_lines = 0;       // a last line without its newline (writer killed mid-write)
  uint64_t invalid_lines = 0;    // not an event; the file is kept as <name>.rejected
  uint64_t files_rejected = 0;   // kept as <name>.rejected: an invalid line, or not a regular
                                 // file of ours (FIFO, symlink, directory, other uid)
};

struct SpoolPending {
  uint64_t files = 0;
  uint64_t events = 0;  // complete lines
};

// Checks that `dir` is a directory fit to hold ferry's private files: not a symlink (when
// `no_symlink`), owned by the effective uid, not writable by group or others. A directory
// that others can only read or enter is tightened to 0700 (with a warning). The error names
// the path, its mode and owner, and what to do. `what` is "state directory", "spool
// directory", ... Any thread.
Status CheckPrivateDir(const std::string& dir, const std::string& what, bool no_symlink);

class Redactor;

class SpoolImporter {
 public:
  // `journal`, `committer` and `window` must outlive the importer. `on_written` runs after
  // each journal flush the importer makes, with the written seq (as IngestServer's listener).
  SpoolImporter(net::io_context& io, std::string dir, Journal& journal, JournalCommitter& committer,
                DedupeWindow& window, std::function<void(uint64_t)> on_written);
  ~SpoolImporter();
  SpoolImporter(const SpoolImporter&) = delete;
  SpoolImporter& operator=(const SpoolImporter&) = delete;

  // Creates the spool directory (0700), refuses one that is a symlink, another uid's, or
  // writable by others (CheckPrivateDir), starts watching it, starts the importer thread and
  // asks for the first scan. Waits (at most kFirstCountWait, 2 s) until the importer thread
  // has counted what waits in the spool, so the first `ferry status` shows it; the import
  // itself runs once the io loop does.
  Status Start();
  // Stops watching and rescanning and joins the importer thread; files not yet removed stay
  // for the next start. io thread.
  void Stop();
  // The journal is durable up to `seq`: the files whose events it covers are removed (by the
  // importer thread). io thread.
  void OnDurable(uint64_t seq);

  // What waits in the spool directory, including files being imported, as counted by the
  // importer thread at its last scan (no file I/O here). Any thread.
  SpoolPending Pending() const;
  SpoolCounters counters() const;
  // [redact] local = true (see IngestServer::SetLocalRedactor). io thread.
  void SetLocalRedactor(std::shared_ptr<const Redactor> redactor);

  // Test hook: true once the importer thread finished a scan with nothing left to do.
  bool TEST_idle() const;

 private:
  // A slice of one file's events, handed to the io thread. `last` closes the file.
  struct Chunk {
    std::string name;
    int64_t received = 0;
    std::vector<CanonicalEvent> events;  // canonical already (importer thread)
    bool last = false;
    bool rejected = false;  // with last: rename to .rejected instead of removing
  };
  struct Awaiting {
    uint64_t seq = 0;  // removable once the journal is durable up to this
    std::string name;
    bool rejected = false;
  };
  struct Removal {
    std::string name;
    bool rejected = false;
    bool keep = false;  // the journal refused: forget it, leave the file for the next start
  };
  struct Known {  // a spool file the importer thread has counted
    ino_t ino = 0;
    off_t size = 0;
    int64_t mtime_ns = 0;
    uint64_t lines = 0;
  };

  // io thread
  void DoWatch();
  void OnWatch(const boost::system::error_code& ec, size_t n);
  void ArmRescan();
  void RequestScan();
  void OnChunk(Chunk chunk);

  // importer thread
  void Run();
  void Scan();
  void Recount(const std::vector<std::string>& names);
  // Opens `name` for reading if it is a regular file of ours; otherwise moves it aside and
  // returns -1. *st gets its fstat.
  int OpenChecked(const std::string& name, struct stat* st);
  void MoveAside(const std::string& name, const std::string& why);
  // One file being imported (importer thread).
  struct FileImport {
    std::string name, path;
    std::shared_ptr<const Redactor> redactor;
    Chunk chunk;  // the events not yet handed to the io thread
    size_t chunk_bytes = 0;
    bool rejected = false;  // an invalid line: the file is kept as .rejected
    size_t line_no = 0;
    proto::EventRequest request;
    rapidjson::StringBuffer body;  // reused for each canonical body
  };
  void ImportFile(const std::string& name);
  bool TakeLines(FileImport& f, const std::string& text, size_t* pos);
  bool SendChunk(Chunk chunk);  // waits until the io thread took it; false when stopping
  void DoRemovals(std::vector<Removal> removals);
  bool Importable(const std::string& name, const struct stat& st) const;
  void Publish();

  net::io_context& io_;
  const std::string dir_;
  Journal& journal_;
  JournalCommitter& committer_;
  std::function<void(uint64_t)> on_written_;

  // io thread only
  EventAdmitter admitter_;  // the admit path shared with IngestSession (admit.h)
  int inotify_fd_ = -1;
  std::unique_ptr<net::posix::stream_descriptor> watch_;
  std::vector<char> watch_buf_;
  net::steady_timer rescan_timer_;
  bool stopped_ = false;
  uint64_t durable_seq_ = 0;
  std::deque<Awaiting> awaiting_;  // in seq order
  bool chunk_failed_ = false;      // the journal refused part of the current file

  // importer thread only
  std::map<std::string, Known> known_;  // spool files counted, by name
  std::set<std::string> in_flight_;     // handed to the journal, not yet removed
  std::set<std::string> cannot_move_;   // moving aside failed; not retried, not re-logged

  // shared between the io thread and the importer thread, under mu_
  mutable Mutex mu_;
  CondVar cv_;
  bool stop_ FERRY_GUARDED_BY(mu_) = false;
  std::atomic<bool> stopping_{false};  // stop_, readable without mu_ in the read loops
  bool scan_requested_ FERRY_GUARDED_BY(mu_) = false;
  bool chunk_outstanding_ FERRY_GUARDED_BY(mu_) = false;
  bool journal_failed_ FERRY_GUARDED_BY(mu_) = false;
  bool idle_ FERRY_GUARDED_BY(mu_) = false;
  bool counted_ FERRY_GUARDED_BY(mu_) = false;  // the first Recount is published
  std::vector<Removal> removals_ FERRY_GUARDED_BY(mu_);
  std::shared_ptr<const Redactor> local_redactor_ FERRY_GUARDED_BY(mu_);
  std::thread thread_;  // started by Start, joined by Stop (io thread)

  // published counts
  std::atomic<uint64_t> pending_files_{0}, pending_events_{0};
  std::atomic<uint64_t> files_imported_{0}, events_imported_{0}, duplicates_{0}, torn_lines_{0},
      invalid_lines_{0}, files_rejected_{0};
};

}  // namespace ferry
