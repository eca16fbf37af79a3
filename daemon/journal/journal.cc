#include "daemon/journal/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/journal/format.h"

namespace ferry {
namespace {

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

Status ReadWholeFile(const std::string& path, std::string* out) {
  const int fd = fs::Open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  out->clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = fs::Read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      fs::Close(fd);
      return Status::FromErrno("read " + path, err);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  fs::Close(fd);
  return Status::Ok();
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = fs::Write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(what, errno);
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status SyncDir(int dir_fd, const std::string& dir) {
  if (fs::Fsync(dir_fd) != 0) return Status::FromErrno("fsync directory " + dir, errno);
  return Status::Ok();
}

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
  Status s = WriteAll(fd, bytes.data(), bytes.size(), "write " + path);
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
  if (!ReadWholeFile(path, &data).ok()) return 0;
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

constexpr const char* kHighWaterFile = "highwater";

}  // namespace

SegmentFile::~SegmentFile() {
  if (fd >= 0) fs::Close(fd);
}

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
  if (!ReadWholeFile(Join(dir, kHighWaterFile), &text).ok()) return hw;
  unsigned long long segment = 0, next = 0;
  if (std::sscanf(text.c_str(), "segment %llu\nnext %llu", &segment, &next) == 2) {
    hw.segment = segment;
    hw.next = next;
  }
  return hw;
}

Journal::Journal(Options options) : options_(std::move(options)) {}

Journal::~Journal() {
  if (dir_fd_ >= 0) fs::Close(dir_fd_);
}

Status Journal::Open(const Options& options, std::unique_ptr<Journal>* journal,
                     RecoveryReport* report) {
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno("create journal directory " + options.dir, errno);
  }
  std::unique_ptr<Journal> j(new Journal(options));
  j->dir_fd_ = fs::Open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dir_fd_ < 0) return Status::FromErrno("open journal directory " + options.dir, errno);
  *report = RecoveryReport();
  Status s = j->Recover(report);
  if (!s.ok()) return s;
  *journal = std::move(j);
  return Status::Ok();
}

// Replaces the high-water file (temp file, fsync, rename, directory fsync).
Status Journal::WriteHighWater(uint64_t segment, uint64_t next) {
  const std::string path = Join(options_.dir, kHighWaterFile);
  const std::string tmp = path + ".tmp";
  const std::string text =
      "segment " + std::to_string(segment) + "\nnext " + std::to_string(next) + "\n";
  const int fd = fs::Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  Status s = WriteAll(fd, text.data(), text.size(), "write " + tmp);
  if (s.ok() && fs::Fsync(fd) != 0) s = Status::FromErrno("fsync " + tmp, errno);
  fs::Close(fd);
  if (s.ok() && fs::Rename(tmp.c_str(), path.c_str()) != 0) {
    s = Status::FromErrno("rename " + tmp, errno);
  }
  if (s.ok()) s = SyncDir(dir_fd_, options_.dir);
  if (!s.ok()) {
    fs::Unlink(tmp.c_str());
    return s;
  }
  high_water_segment_ = segment;
  return Status::Ok();
}

Status Journal::SaveHighWater() {
  if (!active_) return Status::Ok();
  return WriteHighWater(active_->first_seq, next_seq_);
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

  // Strays: a newest segment whose name neither is the one the journal last created (the
  // high-water file) nor continues the segment before it. Legit gaps (made below, or by a
  // failed segment) are always recorded in the high-water file before their segment exists.
  while (!seqs.empty()) {
    const uint64_t newest = seqs.back();
    bool legit = false;
    if (newest <= hw.segment || (hw.segment == 0 && seqs.size() == 1)) {
      legit = true;
    } else if (seqs.size() >= 2) {
      const uint64_t prev = seqs[seqs.size() - 2];
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
    if (fs::Rename(from.c_str(), to.c_str()) != 0)
      return Status::FromErrno("rename " + from, errno);
    s = SyncDir(dir_fd_, options_.dir);
    if (!s.ok()) return s;
    report->strays.push_back(from + " -> " + to);
    seqs.pop_back();
  }

  for (size_t i = 0; i + 1 < seqs.size(); ++i) {
    struct stat st {};
    const std::string path = Join(options_.dir, journal::SegmentFileName(seqs[i]));
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    segment_sizes_.emplace_back(seqs[i], static_cast<uint64_t>(st.st_size));
  }

  uint64_t expected = 1;  // the next seq as far as the segments know
  if (!seqs.empty()) {
    const uint64_t first = seqs.back();
    const std::string path = Join(options_.dir, journal::SegmentFileName(first));
    std::string data;
    s = ReadWholeFile(path, &data);
    if (!s.ok()) return s;

    size_t valid_end = 0;
    expected = first;
    std::string reason;
    if (data.size() >= journal::kMagicSize &&
        std::memcmp(data.data(), journal::kSegmentMagic, journal::kMagicSize) == 0) {
      valid_end = journal::kMagicSize;
      while (valid_end < data.size()) {
        journal::RecordView rec;
        const auto check = journal::CheckRecord(std::string_view(data).substr(valid_end), &rec);
        if (check != journal::RecordCheck::kOk) {
          reason = std::string(journal::RecordCheckName(check)) + " at offset " +
                   std::to_string(valid_end);
          break;
        }
        if (rec.seq != expected) {
          reason = "sequence " + std::to_string(rec.seq) + " where " + std::to_string(expected) +
                   " was expected at offset " + std::to_string(valid_end);
          break;
        }
        ++expected;
        valid_end += rec.size;
      }
    } else if (!data.empty()) {
      reason = "bad segment magic";
    }

    const bool needs_magic = valid_end == 0;
    if (valid_end < data.size()) {
      report->dropped_bytes = data.size() - valid_end;
      report->dropped_at = valid_end;
      report->reason = reason;
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
      s = WriteAll(active_->fd, journal::kSegmentMagic, journal::kMagicSize, "write " + path);
      if (!s.ok()) return s;
      valid_end = journal::kMagicSize;
    }
    if (fs::Fdatasync(active_->fd) != 0) return Status::FromErrno("fdatasync " + path, errno);
    active_size_ = valid_end;
    active_records_ = expected - first;
    segment_sizes_.emplace_back(first, active_size_);
  }
  report->segments_next_seq = expected;

  // Never hand out a seq that a consumer (ferry.db, a sink) or an earlier run (the high-water
  // file) may have seen: a cut tail or a lost newest segment must not make seqs come back.
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

  if (seqs.empty() || next > expected) {
    if (active_ && active_records_ == 0) {
      // The newest segment holds nothing (just its magic): the new one replaces it.
      const std::string path = active_->path;
      active_.reset();
      segment_sizes_.pop_back();
      if (fs::Unlink(path.c_str()) != 0) return Status::FromErrno("delete " + path, errno);
    }
    // The high-water file first: a segment whose name skips seqs is only ever found on disk
    // with a record of it, so the next recovery cannot take it for a stray.
    s = WriteHighWater(next, next);
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

// Opens `first_seq`.seg as the active segment; `create` makes it (O_EXCL), writes its magic
// and syncs the directory, and on failure removes what it made so a retry can make it again.
Status Journal::OpenSegment(uint64_t first_seq, bool create) {
  const std::string path = Join(options_.dir, journal::SegmentFileName(first_seq));
  int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
  if (create) flags |= O_CREAT | O_EXCL;
  const int fd = fs::Open(path.c_str(), flags, 0600);
  if (fd < 0) return Status::FromErrno((create ? "create " : "open ") + path, errno);
  auto file = std::make_shared<SegmentFile>(fd, first_seq, path);
  if (create) {
    Status s = WriteAll(fd, journal::kSegmentMagic, journal::kMagicSize, "write " + path);
    if (s.ok()) s = SyncDir(dir_fd_, options_.dir);
    if (!s.ok()) {
      file.reset();
      fs::Unlink(path.c_str());
      return s;
    }
    active_size_ = journal::kMagicSize;
    active_records_ = 0;
    segment_sizes_.emplace_back(first_seq, active_size_);
  }
  active_ = std::move(file);
  return Status::Ok();
}

void Journal::Fail(const Status& status) {
  buffer_.clear();
  next_seq_ = written_seq_ + 1;  // nothing buffered was written: its seqs are given back
  in_batch_ = false;
  if (failure_.ok()) failure_ = status;
}

void Journal::BeginBatch() {
  in_batch_ = true;
  batch_offset_ = buffer_.size();
  batch_first_seq_ = next_seq_;
}

void Journal::EndBatch() { in_batch_ = false; }

Status Journal::Append(int64_t received_ns, std::string_view body, uint64_t* seq) {
  if (!failure_.ok()) return failure_;
  if (body.size() > journal::kMaxRecordBody) {
    if (in_batch_) {  // take back the batch's earlier records
      buffer_.resize(batch_offset_);
      next_seq_ = batch_first_seq_;
      in_batch_ = false;
    }
    return Status::InvalidArgument("record of " + std::to_string(body.size()) +
                                   " bytes is over the journal limit");
  }
  const size_t record_size = journal::kRecordHeaderSize + body.size();
  if (active_records_ + (next_seq_ - 1 - written_seq_) > 0 &&
      active_size_ + buffer_.size() + record_size > options_.segment_bytes) {
    if (!in_batch_ || next_seq_ == batch_first_seq_) {
      Status s = WriteBuffered();
      if (s.ok()) s = Roll(next_seq_);
      if (!s.ok()) {
        Fail(s);
        return s;
      }
    } else if (active_records_ + (batch_first_seq_ - 1 - written_seq_) > 0) {
      // Inside a batch: what came before the batch stays in this segment, and the whole
      // batch moves to the new one, so a failed roll leaves none of it in the journal.
      Status s = WriteBuffered(batch_offset_, batch_first_seq_ - 1);
      if (s.ok()) s = Roll(batch_first_seq_);
      if (!s.ok()) {
        Fail(s);
        return s;
      }
      batch_offset_ = 0;
    }
    // else the batch began this segment: it stays whole, over the size limit.
  }
  const size_t at = buffer_.size();
  buffer_.resize(at + journal::kRecordHeaderSize);
  journal::EncodeRecordHeader(buffer_.data() + at, next_seq_, received_ns, body);
  buffer_.append(body);
  *seq = next_seq_++;
  return Status::Ok();
}

Status Journal::Flush() {
  if (!failure_.ok()) return failure_;
  Status s = WriteBuffered();
  if (!s.ok()) return s;
  // A segment without records is never rolled: the new one would get the same name (its
  // first seq). A failed roll here fails the journal for later appends, but what this flush
  // wrote is in the journal and is acked.
  if (active_records_ > 0 && active_size_ >= options_.segment_bytes) {
    Status r = Roll(next_seq_);
    if (!r.ok()) Fail(r);
  }
  return Status::Ok();
}

Status Journal::WriteBuffered(size_t bytes, uint64_t last_seq) {
  if (bytes == 0) return Status::Ok();
  Status s;
  if (const int err = fault::Check(fault::Point::kWrite); err != 0) {
    // Simulate a device that takes part of the write and then fails.
    s = WriteAll(active_->fd, buffer_.data(), bytes / 2, "write " + active_->path);
    if (s.ok()) s = Status::FromErrno("write " + active_->path, err);
  } else {
    s = WriteAll(active_->fd, buffer_.data(), bytes, "write " + active_->path);
  }
  if (!s.ok()) {
    // Cut any partial record so the file ends on a whole record; readers and recovery then
    // never see a record we did not ack. The seqs we handed out are given back.
    if (fs::Ftruncate(active_->fd, static_cast<off_t>(active_size_)) != 0) {
      s = Status::IOError(s.message() + "; truncating back to " + std::to_string(active_size_) +
                          " also failed: " + std::strerror(errno));
    }
    Fail(s);
    return s;
  }
  active_size_ += bytes;
  segment_sizes_.back().second = active_size_;
  active_records_ += last_seq - written_seq_;
  written_seq_ = last_seq;
  buffer_.erase(0, bytes);
  return Status::Ok();
}

Status Journal::Roll(uint64_t first_seq, bool notify) {
  std::shared_ptr<SegmentFile> closed = active_;
  const uint64_t closed_last = written_seq_;
  if (first_seq != written_seq_ + 1 || high_water_segment_ > first_seq) {
    // A gap (or a high-water file ahead of us): the record must exist before the segment.
    Status s = WriteHighWater(first_seq, first_seq);
    if (!s.ok()) return s;
  } else {
    // Contiguous: the file helps tell strays apart, but the count rule covers its absence.
    WriteHighWater(first_seq, first_seq).PermitUncheckedError();
  }
  Status s = OpenSegment(first_seq, /*create=*/true);
  if (!s.ok()) return s;
  if (notify && roll_cb_) roll_cb_(std::move(closed), closed_last);
  return Status::Ok();
}

void Journal::SetFailed(const Status& status) {
  Fail(status);
  sync_failed_ = true;
}

Status Journal::TryRecover(std::shared_ptr<SegmentFile>* closed, uint64_t* closed_last) {
  *closed = nullptr;
  *closed_last = written_seq_;
  if (failure_.ok()) return Status::Ok();
  // The old test fault points (FERRY_TEST_FAULTS write_fail_after / fsync_fail_after) model a
  // device that keeps failing: recovery probes them so it does not succeed on paper.
  for (const auto point : {fault::Point::kWrite, fault::Point::kSync}) {
    if (const int err = fault::Check(point); err != 0) {
      return Status::FromErrno("journal recovery probe", err);
    }
  }
  buffer_.clear();
  next_seq_ = written_seq_ + 1;
  const uint64_t first = next_seq_;
  if (active_records_ == 0) {
    // The failed segment holds no record, so the fresh one takes its name: build it beside
    // it and rename it over it, so the journal never lacks its newest segment.
    const std::string path = active_->path;
    const std::string tmp = path + ".new";
    const int fd = fs::Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return Status::FromErrno("create " + tmp, errno);
    auto file = std::make_shared<SegmentFile>(fd, first, path);
    Status s = WriteAll(fd, journal::kSegmentMagic, journal::kMagicSize, "write " + tmp);
    if (s.ok() && fs::Fdatasync(fd) != 0) s = Status::FromErrno("fdatasync " + tmp, errno);
    if (s.ok() && fs::Rename(tmp.c_str(), path.c_str()) != 0) {
      s = Status::FromErrno("rename " + tmp, errno);
    }
    if (s.ok()) s = SyncDir(dir_fd_, options_.dir);
    if (!s.ok()) {
      fs::Unlink(tmp.c_str());
      return s;
    }
    active_ = std::move(file);
    active_size_ = journal::kMagicSize;
    segment_sizes_.back().second = active_size_;
  } else {
    std::shared_ptr<SegmentFile> old = active_;
    Status s = Roll(first, /*notify=*/false);  // we report `old` to the caller ourselves
    if (!s.ok()) return s;
    // After a failed write the old segment's records are whole and were never synced by a
    // failing fd: sync them now. After a failed fdatasync its fd is never trusted again.
    if (!sync_failed_) *closed = std::move(old);
  }
  failure_ = Status::Ok();
  sync_failed_ = false;
  ++recoveries_;
  return Status::Ok();
}

uint64_t Journal::oldest_seq() const {
  if (written_seq_ == 0 || segment_sizes_.empty()) return 0;
  return segment_sizes_.front().first;
}

Status Journal::DeleteOldestSegments(size_t count) {
  count = std::min(count, segment_sizes_.empty() ? size_t{0} : segment_sizes_.size() - 1);
  Status s;
  size_t deleted = 0;
  for (; deleted < count; ++deleted) {
    const std::string path =
        Join(options_.dir, journal::SegmentFileName(segment_sizes_[deleted].first));
    if (fs::Unlink(path.c_str()) != 0 && errno != ENOENT) {
      s = Status::FromErrno("delete " + path, errno);
      break;
    }
  }
  segment_sizes_.erase(segment_sizes_.begin(),
                       segment_sizes_.begin() + static_cast<std::ptrdiff_t>(deleted));
  if (deleted > 0 && s.ok()) s = SyncDir(dir_fd_, options_.dir);
  return s;
}

uint64_t Journal::total_bytes() const {
  uint64_t total = 0;
  for (const auto& [seq, bytes] : segment_sizes_) total += bytes;
  return total;
}

}  // namespace ferry
