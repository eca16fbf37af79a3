// Journal retention: which segments to delete, and the bookkeeping of events lost to the
// byte cap (docs/journal-format.md, "Retention"; docs/operations.md, "Retention").
//
// The rule, whole segments, oldest first, never the active one, never leaving a hole:
// - over journal.max_bytes, the oldest goes whether read or not; seqs a consumer had not
//   processed are lost for it (counted, logged, DEGRADED until acknowledged);
// - older than journal.max_age (its mtime; off by default), it goes once every consumer has
//   read it;
// - while the journal refuses appends on a full disk, segments every consumer has read go;
// - nothing else deletes a segment: what consumers have read stays, so tail --from, a rebuilt
//   ferry.db and a sink added later see everything kept.
//
// - PlanRetention is a pure function (any thread): given the segments, the lowest consumer
//   cursor and the limits, it says how many of the oldest segments to delete, why, and which
//   seqs that loses.
// - Retention applies a plan on the io thread (it owns the Journal), counts losses per
//   consumer, logs them, and keeps the counts in <state>/retention.json so a restart
//   neither forgets a loss nor raises the alarm again for one already acknowledged.
//
// Thread: Retention is io-thread only. It reads consumer cursors through ConsumerRegistry
// (atomics), so consumer threads never wait for it.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "daemon/base/status.h"
#include "daemon/journal/progress.h"
#include "proto/event.h"

namespace ferry {

class Journal;

struct SegmentInfo {
  uint64_t first_seq = 0;
  uint64_t bytes = 0;
  int64_t mtime_ns = 0;  // last write (closed segments; unused for the active one)
};

struct RetentionLimits {
  uint64_t max_bytes = UINT64_MAX;
  int64_t max_age_ns = 0;  // 0: no age limit
  int64_t now_ns = 0;      // CLOCK_REALTIME, compared with mtime_ns
  bool make_room = false;  // the disk is full: delete what every consumer has read
};

struct RetentionPlan {
  size_t delete_count = 0;  // delete segments[0, delete_count)
  size_t for_cap = 0;       // of which deleted because the journal was over max_bytes,
  size_t for_age = 0;       // older than max_age (and read by every consumer),
  size_t for_room = 0;      // or to make room on a full disk (read by every consumer)
  uint64_t first_seq = 0;   // seqs the deleted segments held: [first_seq, last_seq]
  uint64_t last_seq = 0;    // (both 0 when nothing is deleted)
  uint64_t lost_from = 0;   // seqs deleted before every consumer had them:
  uint64_t lost_to = 0;     // [lost_from, lost_to]; lost_to < lost_from when none
  uint64_t lost() const {
    return lost_to >= lost_from && lost_to > 0 ? lost_to - lost_from + 1 : 0;
  }
};

// `segments` ascending by first seq; the last one is the active segment and is never
// deleted. Oldest first, a segment is deleted while the total is over `limits.max_bytes`
// (even if unread), or when `min_cursor` (the lowest consumer cursor) is at or past its last
// seq and it is older than `limits.max_age_ns` or `limits.make_room` is set; the first segment
// that qualifies for none stops the plan. With no consumers (`have_consumers` false) every
// segment counts as read and nothing as lost.
RetentionPlan PlanRetention(const std::vector<SegmentInfo>& segments, bool have_consumers,
                            uint64_t min_cursor, const RetentionLimits& limits);

// Seqs of a plan's deleted range that a consumer at `cursor` had not processed.
uint64_t LostFor(const RetentionPlan& plan, uint64_t cursor);

// Is `failure` (the journal's) a full disk (ENOSPC, EDQUOT)?
bool IsDiskFull(const Status& failure);

class Retention {
 public:
  // `journal` and `consumers` must outlive this. `state_file` keeps the loss counts.
  Retention(Journal& journal, ConsumerRegistry& consumers, uint64_t max_bytes,
            std::string state_file);
  Retention(const Retention&) = delete;
  Retention& operator=(const Retention&) = delete;

  // Reads the saved counts (a missing file means none). Call before Run().
  Status Load();
  // Deletes what the policy allows; logs and counts losses. Cheap when nothing is due.
  void Run();
  // `ferry status --ack-lost`: every loss so far is acknowledged (and saved).
  void AckLost();

  // journal.max_age (0: off); takes effect at the next Run(). JournalUpkeep sets it from the
  // running config before every timed run, so a reload applies it.
  void SetMaxAge(std::chrono::milliseconds max_age) { max_age_ = max_age; }
  std::chrono::milliseconds max_age() const { return max_age_; }
  // Tests: the wall clock (ns since the epoch) segment ages are measured against.
  void SetClockForTest(std::function<int64_t()> now_ns) { now_ns_ = std::move(now_ns); }

  uint64_t lost_events() const { return lost_events_; }
  uint64_t acked_lost() const { return acked_lost_; }
  uint64_t unacked_lost() const { return lost_events_ - acked_lost_; }
  uint64_t deleted_segments() const { return deleted_segments_; }
  uint64_t max_bytes() const { return max_bytes_; }
  // Per consumer name, events lost by it (including before the last restart).
  uint64_t LostBy(const std::string& name) const;

  // Writes the `journal` retention keys (into an open object) and the `consumers` array.
  // (Not const: the oldest record's time is read once per oldest segment and cached.)
  void WriteJournalKeys(proto::JsonWriter& w);
  void WriteConsumers(proto::JsonWriter& w) const;

 private:
  Status Save();
  int64_t SegmentMtime(uint64_t first_seq) const;
  void CountLoss(const RetentionPlan& plan);
  void LogDeleted(const RetentionPlan& plan, size_t deleted);

  Journal& journal_;
  ConsumerRegistry& consumers_;
  const uint64_t max_bytes_;
  const std::string state_file_;
  std::chrono::milliseconds max_age_{0};
  std::function<int64_t()> now_ns_;
  uint64_t lost_events_ = 0;
  uint64_t acked_lost_ = 0;
  uint64_t deleted_segments_ = 0;
  std::map<std::string, uint64_t> lost_by_;
  uint64_t oldest_cached_ = 0;      // first seq of the segment oldest_received_ns_ is from
  int64_t oldest_received_ns_ = 0;  // 0: that segment held no record (yet)
};

}  // namespace ferry
