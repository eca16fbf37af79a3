// Journal: the append side of the sequenced, CRC-framed event log, and its recovery.
// Format: daemon/journal/format.h and docs/journal-format.md.
//
// Thread: the io thread only (Open may run anywhere before the threads start). The sync
// thread touches segment files solely through the SegmentFile handles given to
// JournalCommitter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace ferry {

// An open segment file. Shared between the journal (writes) and the committer (fdatasync);
// closed when the last holder lets go.
struct SegmentFile {
  SegmentFile(int file, uint64_t first, std::string file_path)
      : fd(file), first_seq(first), path(std::move(file_path)) {}
  ~SegmentFile();
  SegmentFile(const SegmentFile&) = delete;
  SegmentFile& operator=(const SegmentFile&) = delete;

  const int fd;
  const uint64_t first_seq;
  const std::string path;
};

// What opening the journal found and did. Logged by ferryd; asserted by tests.
struct RecoveryReport {
  uint64_t last_seq = 0;  // highest seq in the journal (0: empty)
  uint64_t segments = 0;
  uint64_t dropped_bytes = 0;  // cut from the tail of the last segment
  uint64_t dropped_at = 0;     // offset in that segment where the cut was made
  std::string reason;          // why the first dropped byte was refused; empty if none
  std::string saved_path;      // copy of non-zero dropped bytes, kept for forensics:
                               // "<segment>.dropped-at-<offset>", plus ".<n>" if taken
  // Where the segments alone would have continued (their last seq + 1), and where appends
  // continue: above every seq a consumer or an earlier run may have seen (docs/journal-format.md
  // "Recovery", step 6). When next_seq > segments_next_seq, the seqs in between are skipped:
  // they are in no segment, and readers count them as skipped.
  uint64_t segments_next_seq = 1;
  uint64_t next_seq = 1;
  std::string next_seq_reason;  // which floor set next_seq (empty: the segments did)
  // Newest segments whose names do not continue the sequence, renamed "<name>.stray-<n>":
  // "<old path> -> <new path>", newest first.
  std::vector<std::string> strays;
};

struct HighWater;

class Journal {
 public:
  struct Options {
    std::string dir;
    uint64_t segment_bytes = 64ull << 20;
    // The lowest seq appends may continue with: one above the highest seq any consumer has
    // seen (ferry.db's cursor, every sink cursor). Recovery never hands out a seq below it.
    uint64_t min_next_seq = 1;
    std::string min_next_seq_source = {};  // who set it, for RecoveryReport::next_seq_reason
  };

  // Opens or creates the journal in options.dir: moves stray newest segments aside, scans the
  // last segment, truncates a torn or corrupt tail to the last valid record, and recovers the
  // last seq; then continues numbering at max(last seq + 1, options.min_next_seq, the
  // high-water file), in a new segment if that leaves a gap. Never reuses a seq a consumer or
  // an earlier run has seen; never crashes on bad bytes; fails only when the directory or
  // files cannot be used.
  static Status Open(const Options& options, std::unique_ptr<Journal>* journal,
                     RecoveryReport* report);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Buffers one record and returns its seq (in *seq). Fails only if the journal has failed (or
  // a roll it needed failed, which fails the journal). Bytes reach the file on Flush();
  // callers ack only after Flush() succeeds.
  Status Append(int64_t received_ns, std::string_view body, uint64_t* seq);

  // A batch is all or nothing (EVENT_BATCH): between BeginBatch() and EndBatch(), Append
  // never splits the batch across segments (a roll it needs happens before the batch's first
  // record, whose buffered records move to the new segment), and if any Append of the batch
  // fails, every record of the batch is taken back (the seqs are given back) before it
  // returns, so the journal holds none of them. EndBatch() after a failure is harmless.
  void BeginBatch();
  void EndBatch();

  // Writes every buffered record to the segment (page cache) with as few write() calls as
  // possible, rolling to a new segment at the size limit. On failure the journal is
  // truncated back to the last whole record, every unwritten seq is given back, and the
  // journal refuses all further appends (sticky, like leveldb's bg_error_).
  Status Flush();

  // Marks the journal failed (the committer calls this via the io thread after a failed
  // fdatasync): no more appends until TryRecover() succeeds. Buffered records are dropped
  // and their seqs given back (their sessions are answered ERROR in the same io turn). The
  // failed segment's fd is never synced or written again (fsyncgate).
  void SetFailed(const Status& status);

  // Self-recovery after a failure (disk full): opens a fresh segment named after the next seq
  // (creating it needs the disk to take its magic and the high-water file) and clears the
  // failure. On success *closed is the segment written before the failure when it holds
  // records that still need an fdatasync (a failed write; nothing after a failed sync), else
  // null; the caller hands it to the committer. On failure the journal stays failed.
  Status TryRecover(std::shared_ptr<SegmentFile>* closed, uint64_t* closed_last);
  uint64_t recoveries() const { return recoveries_; }

  // Records next_seq in the high-water file (clean stop), so a next run never hands out a seq
  // this one has, even if the newest segment is later lost.
  Status SaveHighWater();

  bool failed() const { return !failure_.ok(); }
  const Status& failure() const { return failure_; }
  uint64_t last_seq() const { return next_seq_ - 1; }    // appended, maybe unwritten
  uint64_t written_seq() const { return written_seq_; }  // in the page cache
  uint64_t oldest_seq() const;
  const std::string& dir() const { return options_.dir; }
  const std::shared_ptr<SegmentFile>& active_segment() const { return active_; }

  // Segment files and total bytes on disk (status).
  uint64_t segment_count() const { return segment_sizes_.size(); }
  uint64_t total_bytes() const;
  // (first seq, bytes) of every segment, oldest first; the last is the active one.
  const std::vector<std::pair<uint64_t, uint64_t>>& segments() const { return segment_sizes_; }

  // Retention: unlinks the `count` oldest segments (never the active one) and syncs the
  // directory. A reader that has one of them open keeps reading it through its fd.
  Status DeleteOldestSegments(size_t count);

  // Called with each segment that was closed by a roll, so the committer can sync it.
  // Runs on the io thread inside Flush(); the new segment is already active_segment().
  using RollCallback = std::function<void(std::shared_ptr<SegmentFile> closed, uint64_t last_seq)>;
  void SetRollCallback(RollCallback cb) { roll_cb_ = std::move(cb); }

  // Called once each time the journal goes from healthy to failed (a write, a roll or an
  // fdatasync failed), on the io thread, inside the call that failed: it must not call back
  // into the journal. JournalUpkeep starts its repair timer from it; null clears it.
  void SetFailureListener(std::function<void()> fn) { failure_listener_ = std::move(fn); }

 private:
  explicit Journal(Options options);
  // Recovery (journal/recovery.cc): Recover runs the three steps below, in order.
  Status Recover(RecoveryReport* report);
  Status MoveStrays(const HighWater& hw, std::vector<uint64_t>* seqs, RecoveryReport* report);
  Status RecoverLastSegment(uint64_t first, RecoveryReport* report, uint64_t* expected);
  Status ContinueNumbering(uint64_t expected, const HighWater& hw, bool no_segments,
                           RecoveryReport* report);
  Status OpenSegment(uint64_t first_seq, bool create);
  // Closes the active segment and starts `first_seq`.seg (recording it in the high-water
  // file first when it does not continue the active one).
  Status Roll(uint64_t first_seq, bool notify = true);
  // Writes the first `bytes` of the buffer, which hold the records up to `last_seq`.
  Status WriteBuffered(size_t bytes, uint64_t last_seq);
  Status WriteBuffered() { return WriteBuffered(buffer_.size(), next_seq_ - 1); }
  Status WriteHighWater(uint64_t segment, uint64_t next);
  void Fail(const Status& status);

  const Options options_;
  std::shared_ptr<SegmentFile> active_;
  uint64_t active_size_ = 0;  // bytes in the active segment file
  uint64_t active_records_ = 0;
  uint64_t next_seq_ = 1;
  uint64_t written_seq_ = 0;
  std::string buffer_;  // whole records not yet written
  uint64_t buffer_first_seq_ = 0;
  std::vector<std::pair<uint64_t, uint64_t>> segment_sizes_;  // (first seq, bytes)
  Status failure_;
  bool sync_failed_ = false;  // the failure was an fdatasync: never trust the active fd again
  uint64_t recoveries_ = 0;
  bool in_batch_ = false;
  size_t batch_offset_ = 0;          // buffer_ offset of the batch's first record
  uint64_t batch_first_seq_ = 0;     // its seq
  uint64_t high_water_segment_ = 0;  // the newest segment recorded in the high-water file
  RollCallback roll_cb_;
  std::function<void()> failure_listener_;
  int dir_fd_ = -1;
};

// The high-water file, <journal>/highwater: "segment N\nnext M\n". `segment` is the first
// seq of the newest segment the journal created; `next` the next seq at the last clean stop
// (or at the last segment creation). Absent: both 0.
struct HighWater {
  uint64_t segment = 0;
  uint64_t next = 0;
};
HighWater ReadHighWater(const std::string& dir);

// Lists segment first-seqs in `dir`, ascending.
Status ListSegments(const std::string& dir, std::vector<uint64_t>* first_seqs);

}  // namespace ferry
