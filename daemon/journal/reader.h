// JournalReader: reads records in seq order from any starting seq, across segments.
// Used by the store writer, sinks, tail, the dedupe window and tests.
//
// Thread: one reader belongs to one thread. Readers open the files themselves and never
// touch the writer's state, so any number of them can run beside the io thread; a caller
// passes `limit_seq` (the journal's written seq) so a reader never reads a record that is
// still being written. All file I/O goes through ferry::fs (daemon/base/file_seam.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/status.h"

namespace ferry {

struct JournalRecord {
  uint64_t seq = 0;
  int64_t received_ns = 0;
  std::string body;
};

class JournalReader {
 public:
  // A torn or zero-filled tail of the last segment is the live end (kEnd), never corruption:
  // the writer may be mid-write, and recovery cuts a real torn tail. Anything else wrong in a
  // segment (bad magic, bad length or checksum, a record whose seq is not the segment's first
  // seq plus its index, leftover bytes at the end of a segment that has a successor) drops the
  // rest of that segment, as recovery would: one kCorruption, with error(), dropped_bytes()
  // and the exact seqs lost (lost_first()..lost_last()); reading goes on with the next
  // segment, and the seqs lost are counted in skipped_seqs() when it opens. Damage in the last
  // segment is reported once.
  //
  // A failed system call (pread, open of a segment with any errno but ENOENT, listing the
  // directory) is kIOError, never kEnd or kCorruption: error() names the file, the offset and
  // the errno text, and the reader keeps its position exactly (no byte dropped, next_seq()
  // unchanged), so calling Next() again retries the same read. A caller backs off and retries;
  // it must not move its cursor past next_seq() - 1.
  enum class Result {
    kRecord,      // *record filled
    kEnd,         // nothing more up to limit_seq for now; call again later
    kCorruption,  // bytes were skipped; error() says where and why; call again to go on
    kIOError,     // a read/open/list failed; nothing was skipped; call again to retry
  };

  // Must outlive nothing: the reader keeps its own copy of `dir`.
  JournalReader(std::string dir, uint64_t start_seq);
  ~JournalReader();
  JournalReader(const JournalReader&) = delete;
  JournalReader& operator=(const JournalReader&) = delete;

  Result Next(uint64_t limit_seq, JournalRecord* record);

  // The seq the next record must have.
  uint64_t next_seq() const { return next_seq_; }
  uint64_t dropped_bytes() const { return dropped_bytes_; }
  // Seqs never returned: in dropped bytes, or in segments deleted before the reader got there.
  uint64_t skipped_seqs() const { return skipped_seqs_; }
  // After kCorruption, the seqs at or above the reader's position that the damage made
  // unreadable: lost_first()..lost_last(). lost_first() == 0 when none were lost (bytes after
  // a segment's last record); lost_last() == kUnknownLast when the damage is in the newest
  // segment (every seq from lost_first() up to that segment's end is lost; the count is
  // known only when the next segment appears, and then goes into skipped_seqs()).
  static constexpr uint64_t kUnknownLast = UINT64_MAX;
  uint64_t lost_first() const { return lost_first_; }
  uint64_t lost_last() const { return lost_last_; }
  // After kCorruption: the segment file name and the reason with its offset, e.g.
  // "checksum mismatch at offset 1234" (error() combines them with the seqs and bytes).
  const std::string& damaged_segment() const { return damaged_segment_; }
  const std::string& damage_reason() const { return damage_reason_; }
  const std::string& dir() const { return dir_; }
  // After kCorruption or kIOError; empty after kRecord and kEnd.
  const std::string& error() const { return error_; }

 private:
  enum class Io { kOk, kEnd, kError };  // kError: error_ says what failed
  Io List(std::vector<uint64_t>* seqs);
  Io OpenSegmentFor(uint64_t seq);
  Io NextSegmentExists();  // kOk: a later segment exists
  Io AdvanceToNextSegment();
  Io Fill();  // reads more of the current file into buf_; kEnd at EOF
  Result DropRestOfSegment(std::string why);
  std::string SegmentPath() const;

  const std::string dir_;
  uint64_t next_seq_;
  int fd_ = -1;
  uint64_t segment_first_ = 0;
  uint64_t segment_seq_ = 0;  // the seq the record at pos_ must carry: name + index
  uint64_t file_offset_ = 0;  // offset of buf_[0] in the file
  std::string buf_;
  size_t pos_ = 0;
  bool magic_checked_ = false;
  // The rest of this segment was dropped but no later segment could be opened yet (damage in
  // the newest segment): bytes appended to it later are dropped too, without a new report.
  bool skip_rest_ = false;
  uint64_t dropped_bytes_ = 0;
  uint64_t skipped_seqs_ = 0;
  uint64_t lost_first_ = 0;
  uint64_t lost_last_ = 0;
  std::string damaged_segment_;
  std::string damage_reason_;
  std::string error_;
};

// What the journal's readers have met, for the log and `ferry status` (issue 10 #2, #4). Every
// consumer (the store, each sink, each tail, named by `who`: "store", "sink NAME",
// "tail #N") calls Observe() after each Next():
//  - kIOError: logs a warning when the episode starts, then at most once a minute while it
//    lasts ("still failing after N retries"), and once (info) when a read succeeds again; the
//    error is a `problems` entry ("WHO: cannot read ...") until then. Returns how long to wait
//    before retrying: 100 ms, doubling per consecutive failure, at most 5 s.
//  - kCorruption: logs one warning per report, with the segment, offset, reason and the seqs
//    lost, and keeps one `problems` entry per damaged segment and reason ("journal: seqs A-B
//    unreadable in segment X (reason); ..."), merged over every reader that met it, until
//    it is acknowledged (AckDamage) or ferryd restarts (at most kMaxDamage entries).
//  - kRecord, kEnd: ends the consumer's I/O error episode, if any. The cost when no consumer
//    is in one is a relaxed atomic load.
// Thread: any thread.
namespace journal_health {
inline constexpr size_t kMaxDamage = 32;
std::chrono::milliseconds Observe(std::string_view who, JournalReader::Result result,
                                  const JournalReader& reader);
// The consumer's current read error, empty when it has none.
std::string IoError(std::string_view who);
// Ends `who`'s episode without a log line (a tail that went away, a removed sink).
void Forget(std::string_view who);
// The `problems` entries: damage not acknowledged, then the open read errors.
std::vector<std::string> Problems();
// `ferry status --ack-lost`: the damage reported so far leaves `problems` (a later report
// that loses more seqs of the same segment brings it back).
void AckDamage();
// Test hook: forgets everything.
void TEST_Reset();
}  // namespace journal_health

}  // namespace ferry
