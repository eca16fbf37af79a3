#include "daemon/journal_reader.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/journal.h"
#include "daemon/journal_format.h"

namespace ferry {

JournalReader::JournalReader(std::string dir, uint64_t start_seq)
    : dir_(std::move(dir)), next_seq_(start_seq == 0 ? 1 : start_seq) {}

JournalReader::~JournalReader() {
  if (fd_ >= 0) ::close(fd_);
}

// Opens the segment whose range holds `seq`: the one with the greatest first seq <= seq
// (binary search over the sorted names). A seq below every segment (deleted by retention)
// starts at the oldest segment, and the gap is counted in skipped_seqs().
bool JournalReader::OpenSegmentFor(uint64_t seq) {
  std::vector<uint64_t> seqs;
  if (!ListSegments(dir_, &seqs).ok() || seqs.empty()) return false;
  auto it = std::upper_bound(seqs.begin(), seqs.end(), seq);
  const uint64_t first = it == seqs.begin() ? seqs.front() : *(it - 1);
  const std::string path = dir_ + "/" + journal::SegmentFileName(first);
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
  segment_first_ = first;
  file_offset_ = 0;
  buf_.clear();
  pos_ = 0;
  magic_checked_ = false;
  if (first > next_seq_) {
    skipped_seqs_ += first - next_seq_;
    next_seq_ = first;
  }
  return true;
}

bool JournalReader::NextSegmentExists() const {
  std::vector<uint64_t> seqs;
  if (!ListSegments(dir_, &seqs).ok()) return false;
  return std::upper_bound(seqs.begin(), seqs.end(), segment_first_) != seqs.end();
}

bool JournalReader::AdvanceToNextSegment() {
  std::vector<uint64_t> seqs;
  if (!ListSegments(dir_, &seqs).ok()) return false;
  auto it = std::upper_bound(seqs.begin(), seqs.end(), segment_first_);
  if (it == seqs.end()) return false;
  return OpenSegmentFor(*it);
}

bool JournalReader::Fill() {
  if (pos_ > 0) {
    file_offset_ += pos_;
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  const size_t old = buf_.size();
  const size_t want = std::max<size_t>(1 << 16, old);
  buf_.resize(old + want);
  ssize_t n;
  do {
    n = ::pread(fd_, buf_.data() + old, want, static_cast<off_t>(file_offset_ + old));
  } while (n < 0 && errno == EINTR);
  buf_.resize(old + static_cast<size_t>(n > 0 ? n : 0));
  return n > 0;
}

// Drops everything from pos_ to the end of the current segment and moves to the next one, if
// any; the seqs it held are counted as skipped when the next segment opens. Without a next
// segment the reader stays at the end of this one, so calling again reports nothing twice.
JournalReader::Result JournalReader::DropRestOfSegment(std::string why) {
  while (Fill()) {
  }
  const uint64_t dropped = buf_.size() - pos_;
  error_ = std::move(why) + " in segment " + journal::SegmentFileName(segment_first_) + "; " +
           std::to_string(dropped) + " bytes dropped";
  dropped_bytes_ += dropped;
  pos_ = buf_.size();
  magic_checked_ = true;
  AdvanceToNextSegment();
  return Result::kCorruption;
}

JournalReader::Result JournalReader::Next(uint64_t limit_seq, JournalRecord* record) {
  error_.clear();
  if (next_seq_ > limit_seq) return Result::kEnd;
  if (fd_ < 0 && !OpenSegmentFor(next_seq_)) return Result::kEnd;
  for (;;) {
    if (!magic_checked_) {
      while (buf_.size() - pos_ < journal::kMagicSize && Fill()) {
      }
      if (buf_.size() - pos_ < journal::kMagicSize) {
        // The live segment is created empty and gets its magic at once; a short file with a
        // later segment after it was damaged.
        if (!NextSegmentExists()) return Result::kEnd;
        if (Fill()) continue;
        return DropRestOfSegment("too short for the segment magic");
      }
      if (std::memcmp(buf_.data() + pos_, journal::kSegmentMagic, journal::kMagicSize) != 0) {
        return DropRestOfSegment("bad magic");
      }
      pos_ += journal::kMagicSize;
      magic_checked_ = true;
      segment_seq_ = segment_first_;
    }
    journal::RecordView rec;
    const auto check = journal::CheckRecord(std::string_view(buf_).substr(pos_), &rec);
    if (check == journal::RecordCheck::kOk) {
      // The same rule as recovery: the n-th record of a segment carries the segment's first
      // seq + n. A valid CRC around the wrong seq (a gap or a duplicate) means the writer's
      // framing can no longer be trusted, so the rest of the segment goes, as for a bad CRC.
      // Trusting the seq instead would let one bad record skip or repeat whole ranges.
      if (rec.seq != segment_seq_) {
        return DropRestOfSegment("sequence " + std::to_string(rec.seq) + " where " +
                                 std::to_string(segment_seq_) + " was expected at offset " +
                                 std::to_string(file_offset_ + pos_));
      }
      pos_ += rec.size;
      ++segment_seq_;
      if (rec.seq < next_seq_) continue;  // before the start seq
      record->seq = rec.seq;
      record->received_ns = rec.received_ns;
      record->body.assign(rec.body);
      next_seq_ = rec.seq + 1;
      return Result::kRecord;
    }
    if (check == journal::RecordCheck::kTornHeader || check == journal::RecordCheck::kTornBody ||
        check == journal::RecordCheck::kZeroFill) {
      // Maybe only the end of our buffer: a short run of zero bytes can be the start of a
      // header (the low bytes of its length) cut by the buffer boundary.
      if (Fill()) continue;
      // The end of the file's data. Without a later segment this is the live end, or a torn
      // tail that recovery will cut: report nothing yet. With one, the writer has finished
      // this segment (it rolls only after writing), so read once more in case it finished
      // after our last read, then whatever is left over is damage.
      if (!NextSegmentExists()) return Result::kEnd;
      if (Fill()) continue;
      const uint64_t leftover = buf_.size() - pos_;
      if (leftover == 0) {
        if (!AdvanceToNextSegment()) return Result::kEnd;
        continue;
      }
      return DropRestOfSegment(std::string(journal::RecordCheckName(check)) + " at offset " +
                               std::to_string(file_offset_ + pos_) +
                               " (end of a finished segment)");
    }
    // Checksum or length failure in the middle: the rest of this segment cannot be framed
    // reliably, so it is dropped and reading resumes at the next segment (after leveldb's
    // log_reader: a bad CRC drops the rest of the block rather than guess at boundaries).
    return DropRestOfSegment(std::string(journal::RecordCheckName(check)) + " at offset " +
                             std::to_string(file_offset_ + pos_));
  }
}

}  // namespace ferry
