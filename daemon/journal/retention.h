// Journal retention: which segments to delete, and the bookkeeping of events lost to the
// byte cap (docs/operations.md, "Retention").
//
// - PlanRetention is a pure function (any thread): given the segments, the lowest consumer
//   cursor and the cap, it says how many of the oldest segments to delete and which seqs
//   that loses.
// - Retention applies a plan on the io thread (it owns the Journal), counts losses per
//   consumer, logs them, and keeps the counts in <state>/retention.json so a restart
//   neither forgets a loss nor raises the alarm again for one already acknowledged.
//
// Thread: Retention is io-thread only. It reads consumer cursors through ConsumerRegistry
// (atomics), so consumer threads never wait for it.
#pragma once

#include <cstdint>
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
};

struct RetentionPlan {
  size_t delete_count = 0;  // delete segments[0, delete_count)
  uint64_t first_seq = 0;   // seqs the deleted segments held: [first_seq, last_seq]
  uint64_t last_seq = 0;    // (both 0 when nothing is deleted)
  uint64_t lost_from = 0;   // seqs deleted before every consumer had them:
  uint64_t lost_to = 0;     // [lost_from, lost_to]; lost_to < lost_from when none
  uint64_t lost() const {
    return lost_to >= lost_from && lost_to > 0 ? lost_to - lost_from + 1 : 0;
  }
};

// `segments` ascending by first seq; the last one is the active segment and is never
// deleted. A segment is deleted once `min_cursor` (the lowest consumer cursor) is at or past
// its last seq, or, oldest first, while the total is over `max_bytes` even if unread. With no
// consumers (`have_consumers` false) only the cap deletes: the journal stays the source for
// `ferry tail` and for rebuilding consumers that are not running.
RetentionPlan PlanRetention(const std::vector<SegmentInfo>& segments, bool have_consumers,
                            uint64_t min_cursor, uint64_t max_bytes);

// Seqs of a plan's deleted range that a consumer at `cursor` had not processed.
uint64_t LostFor(const RetentionPlan& plan, uint64_t cursor);

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

  uint64_t lost_events() const { return lost_events_; }
  uint64_t acked_lost() const { return acked_lost_; }
  uint64_t unacked_lost() const { return lost_events_ - acked_lost_; }
  uint64_t deleted_segments() const { return deleted_segments_; }
  uint64_t max_bytes() const { return max_bytes_; }
  // Per consumer name, events lost by it (including before the last restart).
  uint64_t LostBy(const std::string& name) const;

  // Writes the `journal` retention keys (into an open object) and the `consumers` array.
  void WriteJournalKeys(proto::JsonWriter& w) const;
  void WriteConsumers(proto::JsonWriter& w) const;

 private:
  Status Save();

  Journal& journal_;
  ConsumerRegistry& consumers_;
  const uint64_t max_bytes_;
  const std::string state_file_;
  uint64_t lost_events_ = 0;
  uint64_t acked_lost_ = 0;
  uint64_t deleted_segments_ = 0;
  std::map<std::string, uint64_t> lost_by_;
};

}  // namespace ferry
