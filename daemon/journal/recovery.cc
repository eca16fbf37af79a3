// Journal recovery (Journal::Open): strays moved aside, the last segment scanned and cut back
// to its last valid record, and the seq appends continue at. Split out of journal.cc; the
// rules are in docs/journal-format.md, "Recovery".
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"
#include "daemon/journal/format.h"
#include "daemon/journal/journal.h"

namespace ferry {
namespace {

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

// Keeps a copy of bytes recovery is about to cut. An earlier copy with the same name (the
// same segment torn at the same offset by an earlier crash) is never overwritten: the new one
// gets a ".<n>" suffix. The copy and its directory entry are synced before the caller
// truncates, so a crash in between cannot lose the only copy.
Status SaveDropped(int dir_fd, const std::string& dir, const std::string& base,
                   std::string_view bytes, std::string* saved_path) {
  std::string path = base;
  int fd = -1;
  for (int n = 1; fd < 0; ++n) {
    fd = fs::Open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && (errno != EEXIST || n > 1000)) return Status::FromErrno("create " + path, errno);
    if (fd < 0) path = base + "." + std::to_string(n);
  }
  Status s = WriteAll(fd, bytes, "write " + path);
  if (s.ok() && fs::Fsync(fd) != 0) s = Status::FromErrno("fsync " + path, errno);
  fs::Close(fd);
  if (s.ok()) s = SyncDir(dir_fd, dir);
  if (s.ok()) *saved_path = path;
  return s;
}

// The seq after the last valid record of segment `first` when the whole file is valid
// records (the segment ends cleanly), else 0: a damaged segment cannot tell where the next
// one should start.
uint64_t CleanSegmentEnd(const std::string& path, uint64_t first) {
  std::string data;
  if (!ReadFileStatus(path, &data).ok()) return 0;
  if (data.size() < journal::kMagicSize ||
      std::memcmp(data.data(), journal::kSegmentMagic, journal::kMagicSize) != 0) {
    return 0;
  }
  size_t at = journal::kMagicSize;
  uint64_t expected = first;
  while (at < data.size()) {
    journal::RecordView rec;
    if (journal::CheckRecord(std::string_view(data).substr(at), &rec) !=
            journal::RecordCheck::kOk ||
        rec.seq != expected) {
      return 0;
    }
    ++expected;
    at += rec.size;
  }
  return expected;
}

// Where the valid records of a segment's bytes end, and why the first bad byte is bad.
struct SegmentScan {
  size_t valid_end = 0;   // 0: not even the magic is valid
  uint64_t expected = 0;  // the seq after the last valid record
  std::string reason;     // empty when every byte is valid
};

SegmentScan ScanSegment(std::string_view data, uint64_t first) {
  SegmentScan scan;
  scan.expected = first;
  if (data.size() < journal::kMagicSize ||
      std::memcmp(data.data(), journal::kSegmentMagic, journal::kMagicSize) != 0) {
    if (!data.empty()) scan.reason = "bad segment magic";
    return scan;
  }
  scan.valid_end = journal::kMagicSize;
  while (scan.valid_end < data.size()) {
    journal::RecordView rec;
    const auto check = journal::CheckRecord(data.substr(scan.valid_end), &rec);
    if (check != journal::RecordCheck::kOk) {
      scan.reason = std::string(journal::RecordCheckName(check)) + " at offset " +
                    std::to_string(scan.valid_end);
      break;
    }
    if (rec.seq != scan.expected) {
      scan.reason = "sequence " + std::to_string(rec.seq) + " where " +
                    std::to_string(scan.expected) + " was expected at offset " +
                    std::to_string(scan.valid_end);
      break;
    }
    ++scan.expected;
    scan.valid_end += rec.size;
  }
  return scan;
}

}  // namespace

Status ListSegments(const std::string& dir, std::vector<uint64_t>* first_seqs) {
  first_seqs->clear();
  DIR* d = ::opendir(dir.c_str());
  if (!d) return Status::FromErrno("open directory " + dir, errno);
  while (struct dirent* e = ::readdir(d)) {
    uint64_t seq = 0;
    if (journal::ParseSegmentFileName(e->d_name, &seq)) first_seqs->push_back(seq);
  }
  ::closedir(d);
  std::sort(first_seqs->begin(), first_seqs->end());
  return Status::Ok();
}

HighWater ReadHighWater(const std::string& dir) {
  HighWater hw;
  std::string text;
  if (!ReadFileStatus(Join(dir, journal::kHighWaterFile), &text).ok()) return hw;
  unsigned long long segment = 0, next = 0;
  if (std::sscanf(text.c_str(), "segment %llu\nnext %llu", &segment, &next) == 2) {
    hw.segment = segment;
    hw.next = next;
  }
  return hw;
}

// Only the last segment can hold a torn write from a process crash: the writer appends to
// nothing else, and the committer syncs a closed segment as soon as it is closed. So recovery
// scans just that one, and the name of each segment fixes the seq of its first record, which
// makes the last seq exact even when the last segment lost every record. Damage in an older
// segment (a power loss before that sync, bit rot) is left to readers, which report it and
// skip to the next segment. Then numbering continues above every seq anyone may have seen
// (docs/journal-format.md, "Recovery").
Status Journal::Recover(RecoveryReport* report) {
  std::vector<uint64_t> seqs;
  Status s = ListSegments(options_.dir, &seqs);
  if (!s.ok()) return s;
  const HighWater hw = ReadHighWater(options_.dir);
  high_water_segment_ = hw.segment;
  s = MoveStrays(hw, &seqs, report);
  if (!s.ok()) return s;

  for (size_t i = 0; i + 1 < seqs.size(); ++i) {
    struct stat st {};
    const std::string path = Join(options_.dir, journal::SegmentFileName(seqs[i]));
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    segment_sizes_.emplace_back(seqs[i], static_cast<uint64_t>(st.st_size));
  }

  uint64_t expected = 1;  // the next seq as far as the segments know
  if (!seqs.empty()) {
    s = RecoverLastSegment(seqs.back(), report, &expected);
    if (!s.ok()) return s;
  }
  report->segments_next_seq = expected;
  return ContinueNumbering(expected, hw, seqs.empty(), report);
}

// Strays: a newest segment whose name neither is the one the journal last created (the
// high-water file) nor continues the segment before it. Legit gaps (made by ContinueNumbering,
// or by a failed segment) are always recorded in the high-water file before their segment
// exists. Each stray is renamed "<name>.stray-<n>" and dropped from *seqs.
Status Journal::MoveStrays(const HighWater& hw, std::vector<uint64_t>* seqs,
                           RecoveryReport* report) {
  while (!seqs->empty()) {
    const uint64_t newest = seqs->back();
    bool legit = false;
    if (newest <= hw.segment || (hw.segment == 0 && seqs->size() == 1)) {
      legit = true;
    } else if (seqs->size() >= 2) {
      const uint64_t prev = (*seqs)[seqs->size() - 2];
      const uint64_t end =
          CleanSegmentEnd(Join(options_.dir, journal::SegmentFileName(prev)), prev);
      legit = end == 0 || end == newest;  // a damaged predecessor cannot testify against it
    }
    if (legit) break;
    const std::string from = Join(options_.dir, journal::SegmentFileName(newest));
    std::string to;
    for (int n = 1;; ++n) {
      to = from + ".stray-" + std::to_string(n);
      struct stat st {};
      if (::stat(to.c_str(), &st) != 0) break;
    }
    if (fs::Rename(from.c_str(), to.c_str()) != 0) {
      return Status::FromErrno("rename " + from, errno);
    }
    Status s = SyncDir(dir_fd_, options_.dir);
    if (!s.ok()) return s;
    report->strays.push_back(from + " -> " + to);
    seqs->pop_back();
  }
  return Status::Ok();
}

// Scans segment `first` (the newest), cuts it back to its last valid record (keeping a copy
// of non-zero cut bytes), opens it as the active segment and syncs it. *expected is the seq
// after its last valid record.
Status Journal::RecoverLastSegment(uint64_t first, RecoveryReport* report, uint64_t* expected) {
  const std::string path = Join(options_.dir, journal::SegmentFileName(first));
  std::string data;
  Status s = ReadFileStatus(path, &data);
  if (!s.ok()) return s;
  const SegmentScan scan = ScanSegment(data, first);
  size_t valid_end = scan.valid_end;
  *expected = scan.expected;

  const bool needs_magic = valid_end == 0;
  if (valid_end < data.size()) {
    report->dropped_bytes = data.size() - valid_end;
    report->dropped_at = valid_end;
    report->reason = scan.reason;
    const std::string_view dropped = std::string_view(data).substr(valid_end);
    if (dropped.find_first_not_of('\0') != std::string_view::npos) {
      s = SaveDropped(dir_fd_, options_.dir, path + ".dropped-at-" + std::to_string(valid_end),
                      dropped, &report->saved_path);
      if (!s.ok()) return s;
    }
    if (fs::Truncate(path.c_str(), static_cast<off_t>(valid_end)) != 0) {
      return Status::FromErrno("truncate " + path, errno);
    }
  }

  s = OpenSegment(first, /*create=*/false);
  if (!s.ok()) return s;
  if (needs_magic) {
    s = WriteAll(active_->fd, std::string_view(journal::kSegmentMagic, journal::kMagicSize),
                 "write " + path);
    if (!s.ok()) return s;
    valid_end = journal::kMagicSize;
  }
  if (fs::Fdatasync(active_->fd) != 0) return Status::FromErrno("fdatasync " + path, errno);
  active_size_ = valid_end;
  active_records_ = *expected - first;
  segment_sizes_.emplace_back(first, active_size_);
  return Status::Ok();
}

// Never hand out a seq that a consumer (ferry.db, a sink) or an earlier run (the high-water
// file) may have seen: a cut tail or a lost newest segment must not make seqs come back.
Status Journal::ContinueNumbering(uint64_t expected, const HighWater& hw, bool no_segments,
                                  RecoveryReport* report) {
  uint64_t next = expected;
  const auto raise = [&](uint64_t floor, const std::string& why) {
    if (floor > next) {
      next = floor;
      report->next_seq_reason = why;
    }
  };
  raise(hw.segment, "the high-water file records segment " + std::to_string(hw.segment));
  raise(hw.next, "the high-water file records next seq " + std::to_string(hw.next));
  raise(options_.min_next_seq,
        options_.min_next_seq_source.empty()
            ? "a consumer has seen seq " + std::to_string(options_.min_next_seq - 1)
            : options_.min_next_seq_source);
  report->next_seq = next;

  if (no_segments || next > expected) {
    if (active_ && active_records_ == 0) {
      // The newest segment holds nothing (just its magic): the new one replaces it.
      const std::string path = active_->path;
      active_.reset();
      segment_sizes_.pop_back();
      if (fs::Unlink(path.c_str()) != 0) return Status::FromErrno("delete " + path, errno);
    }
    // The high-water file first: a segment whose name skips seqs is only ever found on disk
    // with a record of it, so the next recovery cannot take it for a stray.
    Status s = WriteHighWater(next, next);
    if (!s.ok()) return s;
    s = OpenSegment(next, /*create=*/true);
    if (!s.ok()) return s;
  } else {
    // Marks the newest segment as ours (best effort: the count rule covers a missing file).
    WriteHighWater(active_->first_seq, next).PermitUncheckedError();
  }
  next_seq_ = next;
  written_seq_ = next - 1;
  report->last_seq = written_seq_;
  report->segments = segment_sizes_.size();
  return Status::Ok();
}

}  // namespace ferry
