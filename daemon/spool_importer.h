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
// Thread: the io thread only (OnDurable is posted there by the sync thread's callback).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "daemon/asio.h"
#include "daemon/dedupe_window.h"
#include "daemon/journal.h"
#include "daemon/journal_committer.h"
#include "daemon/status.h"

namespace ferry {

struct SpoolCounters {
  uint64_t files_imported = 0;   // removed after their events were durable
  uint64_t events_imported = 0;  // appended to the journal
  uint64_t duplicates = 0;       // skipped: the id was already in the journal
  uint64_t torn_lines = 0;       // a last line without its newline (writer killed mid-write)
  uint64_t invalid_lines = 0;    // not an event; the file is kept as <name>.rejected
  uint64_t files_rejected = 0;
};

struct SpoolPending {
  uint64_t files = 0;
  uint64_t events = 0;  // complete lines
};

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

  // Creates the spool directory (0700), starts watching it and posts the first scan.
  Status Start();
  // Stops watching and rescanning; files not yet removed stay for the next start.
  void Stop();
  // The journal is durable up to `seq`: removes the files whose events it covers.
  void OnDurable(uint64_t seq);

  // What waits in the spool directory now, including files being imported (lists it).
  SpoolPending Pending() const;
  const SpoolCounters& counters() const { return counters_; }
  // [redact] local = true (see IngestServer::SetLocalRedactor). io thread.
  void SetLocalRedactor(std::shared_ptr<const Redactor> redactor) {
    local_redactor_ = std::move(redactor);
  }

 private:
  struct Batch {
    uint64_t seq = 0;  // removable once the journal is durable up to this
    std::vector<std::string> names;
    std::vector<bool> rejected;  // per name: rename to .rejected instead of removing
  };

  void DoWatch();
  void OnWatch(const boost::system::error_code& ec, size_t n);
  void ScheduleScan();
  void Scan();
  void ArmRescan();
  // Appends the events of one file; returns false if the journal refused an append.
  bool ImportFile(const std::string& name, bool* rejected, size_t* bytes);
  bool Importable(const std::string& name) const;

  net::io_context& io_;
  const std::string dir_;
  Journal& journal_;
  JournalCommitter& committer_;
  DedupeWindow& window_;
  std::function<void(uint64_t)> on_written_;
  int inotify_fd_ = -1;
  std::unique_ptr<net::posix::stream_descriptor> watch_;
  std::vector<char> watch_buf_;
  net::steady_timer rescan_timer_;
  bool scan_posted_ = false;
  bool stopped_ = false;
  uint64_t durable_seq_ = 0;
  std::deque<Batch> awaiting_;                 // in seq order
  std::unordered_set<std::string> in_flight_;  // names in awaiting_
  SpoolCounters counters_;
  std::shared_ptr<const Redactor> local_redactor_;
};

}  // namespace ferry
