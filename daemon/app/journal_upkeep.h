// JournalUpkeep: the journal's two io-thread timers.
//
// Retention: every second, Retention::Run() (through the publisher) deletes what the policy
// allows (docs/journal-format.md, "Retention"), besides the run after every flush that rolled
// or went over the cap. Each tick first hands the running journal.max_age to Retention, so a
// reload applies it within a second. Start() logs the cap and the age limit in use.
//
// Repair, the self-recovery of a failed journal. A failed journal (a write or fdatasync
// failed: disk full, I/O error) refuses appends, and clients spool. The journal tells this
// the moment it fails (Journal::SetFailureListener); then, after each backoff (250 ms
// doubling to 5 s), it tries to continue in a fresh segment
// (Journal::TryRecover); when the disk takes it, the committer resumes, the ingest server
// clears its sync failure, the dedupe window is rebuilt from what the journal holds for sure,
// and appends resume by themselves (docs/journal-format.md, "Failures and self-recovery").
//
// A healthy journal costs one timer a second (retention) and no repair timer: an idle ferryd
// wakes once a second for the journal, not ten times.
// Errors: a failed attempt is logged at debug level and retried after the backoff.
// Thread: the io thread only.
#pragma once

#include <chrono>

#include "daemon/base/asio.h"

namespace ferry {

struct DaemonParts;

class JournalUpkeep {
 public:
  // `parts` must outlive this and hold the journal, committer, server, dedupe window and
  // publisher by the first tick.
  JournalUpkeep(DaemonParts& parts, net::io_context& io);
  JournalUpkeep(const JournalUpkeep&) = delete;
  JournalUpkeep& operator=(const JournalUpkeep&) = delete;

  // Runs retention and the first repair check now, then on their timers until Stop().
  void Start();
  void Stop();

 private:
  void RetentionTick();
  void StartRepair();  // the journal failed: first attempt after 250 ms
  void ArmRepair();    // the next attempt at retry_at_
  void RepairTick();
  void TryNow();

  DaemonParts& parts_;
  net::steady_timer timer_;
  net::steady_timer retention_timer_;
  bool stopped_ = false;
  bool repairing_ = false;                // the repair timer is armed
  std::chrono::milliseconds backoff_{0};  // 0: healthy, or recovered by the last attempt
  std::chrono::steady_clock::time_point retry_at_{};
};

}  // namespace ferry
