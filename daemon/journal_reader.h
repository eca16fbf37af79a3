// JournalReader: reads records in seq order from any starting seq, across segments.
// Used by tests and `ferry`-facing features now, and by the store writer, sinks and tail.
//
// Thread: one reader belongs to one thread. Readers open the files themselves and never
// touch the writer's state, so any number of them can run beside the io thread; a caller
// passes `limit_seq` (the journal's written seq) so a reader never reads a record that is
// still being written.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "daemon/status.h"

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
  // rest of that segment, as recovery would: one kCorruption, with error() and
  // dropped_bytes(); reading goes on with the next segment, and the seqs lost are counted in
  // skipped_seqs() when it opens. Damage in the last segment is reported once.
  enum class Result {
    kRecord,      // *record filled
    kEnd,         // nothing more up to limit_seq for now; call again later
    kCorruption,  // bytes were skipped; error() says where and why; call again to go on
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
  const std::string& error() const { return error_; }

 private:
  bool OpenSegmentFor(uint64_t seq);
  bool NextSegmentExists() const;
  bool AdvanceToNextSegment();
  bool Fill();  // reads more of the current file into buf_; false at EOF or error
  Result DropRestOfSegment(std::string why);

  const std::string dir_;
  uint64_t next_seq_;
  int fd_ = -1;
  uint64_t segment_first_ = 0;
  uint64_t segment_seq_ = 0;  // the seq the record at pos_ must carry: name + index
  uint64_t file_offset_ = 0;  // offset of buf_[0] in the file
  std::string buf_;
  size_t pos_ = 0;
  bool magic_checked_ = false;
  uint64_t dropped_bytes_ = 0;
  uint64_t skipped_seqs_ = 0;
  std::string error_;
};

}  // namespace ferry
