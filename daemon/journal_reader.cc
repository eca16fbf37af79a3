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

JournalReader::Result JournalReader::Next(uint64_t limit_seq, JournalRecord* record) {
  error_.clear();
  if (next_seq_ > limit_seq) return Result::kEnd;
  if (fd_ < 0 && !OpenSegmentFor(next_seq_)) return Result::kEnd;
  for (;;) {
    if (!magic_checked_) {
      while (buf_.size() - pos_ < journal::kMagicSize && Fill()) {
      }
      if (buf_.size() - pos_ < journal::kMagicSize) return Result::kEnd;
      if (std::memcmp(buf_.data() + pos_, journal::kSegmentMagic, journal::kMagicSize) != 0) {
        error_ = "segment " + journal::SegmentFileName(segment_first_) + " has a bad magic";
        dropped_bytes_ += buf_.size() - pos_;
        if (!AdvanceToNextSegment()) fd_ = -1;
        return Result::kCorruption;
      }
      pos_ += journal::kMagicSize;
      magic_checked_ = true;
    }
    journal::RecordView rec;
    const auto check = journal::CheckRecord(std::string_view(buf_).substr(pos_), &rec);
    if (check == journal::RecordCheck::kOk) {
      if (rec.seq < next_seq_) {  // before the start seq: skip
        pos_ += rec.size;
        continue;
      }
      if (rec.seq != next_seq_) {
        error_ = "sequence " + std::to_string(rec.seq) + " where " + std::to_string(next_seq_) +
                 " was expected in segment " + journal::SegmentFileName(segment_first_);
        skipped_seqs_ += rec.seq - next_seq_;
        next_seq_ = rec.seq;
        return Result::kCorruption;
      }
      record->seq = rec.seq;
      record->received_ns = rec.received_ns;
      record->body.assign(rec.body);
      pos_ += rec.size;
      ++next_seq_;
      return Result::kRecord;
    }
    if ((check == journal::RecordCheck::kTornHeader || check == journal::RecordCheck::kTornBody) &&
        Fill()) {
      continue;  // the record continues beyond what we buffered
    }
    if (buf_.size() == pos_ || check == journal::RecordCheck::kTornHeader ||
        check == journal::RecordCheck::kTornBody || check == journal::RecordCheck::kZeroFill) {
      // End of this file's data. Move on if a later segment exists; otherwise this is the
      // live end (or a torn tail, which recovery will cut): report nothing yet.
      const uint64_t leftover = buf_.size() - pos_;
      const uint64_t seg = segment_first_;
      if (AdvanceToNextSegment()) {
        if (leftover > 0) {
          dropped_bytes_ += leftover;
          error_ = std::to_string(leftover) + " bytes of " +
                   journal::RecordCheckName(check) + " at the end of segment " +
                   journal::SegmentFileName(seg);
          return Result::kCorruption;
        }
        continue;
      }
      return Result::kEnd;
    }
    // Checksum or length failure in the middle: the rest of this segment cannot be framed
    // reliably, so it is dropped and reading resumes at the next segment (after leveldb's
    // log_reader: a bad CRC drops the rest of the block rather than guess at boundaries).
    while (Fill()) {
    }
    const uint64_t dropped = buf_.size() - pos_;
    error_ = std::string(journal::RecordCheckName(check)) + " at offset " +
             std::to_string(file_offset_ + pos_) + " of segment " +
             journal::SegmentFileName(segment_first_) + "; " + std::to_string(dropped) +
             " bytes dropped";
    dropped_bytes_ += dropped;
    if (!AdvanceToNextSegment()) {
      pos_ = buf_.size();
      return Result::kCorruption;
    }
    return Result::kCorruption;
  }
}

}  // namespace ferry
