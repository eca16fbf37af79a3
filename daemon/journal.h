// Journal: the append side of the sequenced, CRC-framed event log, and its recovery.
// Format: daemon/journal_format.h and docs/journal-format.md.
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

#include "daemon/status.h"

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
};

class Journal {
 public:
  struct Options {
    std::string dir;
    uint64_t segment_bytes = 64ull << 20;
  };

  // Opens or creates the journal in options.dir: scans the last segment, truncates a torn or
  // corrupt tail to the last valid record, and recovers the last seq. Never crashes on bad
  // bytes; fails only when the directory or files cannot be used.
  static Status Open(const Options& options, std::unique_ptr<Journal>* journal,
                     RecoveryReport* report);

  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Buffers one record and returns its seq (in *seq). Fails only if the journal has failed.
  // Bytes reach the file on Flush(); callers ack only after Flush() succeeds.
  Status Append(int64_t received_ns, std::string_view body, uint64_t* seq);

  // Writes every buffered record to the segment (page cache) with as few write() calls as
  // possible, rolling to a new segment at the size limit. On failure the journal is
  // truncated back to the last whole record, every unwritten seq is given back, and the
  // journal refuses all further appends (sticky, like leveldb's bg_error_).
  Status Flush();

  // Marks the journal failed (the committer calls this via the io thread after a failed
  // fdatasync): no more appends.
  void SetFailed(const Status& status);

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

 private:
  explicit Journal(Options options);
  Status Recover(RecoveryReport* report);
  Status OpenSegment(uint64_t first_seq, bool create);
  Status Roll();
  Status WriteBuffered();

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
  RollCallback roll_cb_;
  int dir_fd_ = -1;
};

// Lists segment first-seqs in `dir`, ascending.
Status ListSegments(const std::string& dir, std::vector<uint64_t>* first_seqs);

}  // namespace ferry
