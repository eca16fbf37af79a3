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
#include "daemon/base/file_util.h"
#include "daemon/journal/format.h"

namespace ferry {
namespace {

constexpr std::string_view kMagic(journal::kSegmentMagic, journal::kMagicSize);

}  // namespace

SegmentFile::~SegmentFile() {
  if (fd >= 0) fs::Close(fd);
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
  const std::string path = options_.dir + "/" + journal::kHighWaterFile;
  const std::string text =
      "segment " + std::to_string(segment) + "\nnext " + std::to_string(next) + "\n";
  Status s = WriteFileAtomically(path, text, /*durable=*/true, dir_fd_);
  if (!s.ok()) {
    fs::Unlink((path + ".tmp").c_str());
    return s;
  }
  high_water_segment_ = segment;
  return Status::Ok();
}

Status Journal::SaveHighWater() {
  if (!active_) return Status::Ok();
  return WriteHighWater(active_->first_seq, next_seq_);
}

// Opens `first_seq`.seg as the active segment; `create` makes it (O_EXCL), writes its magic
// and syncs the directory, and on failure removes what it made so a retry can make it again.
Status Journal::OpenSegment(uint64_t first_seq, bool create) {
  const std::string path = options_.dir + "/" + journal::SegmentFileName(first_seq);
  int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
  if (create) flags |= O_CREAT | O_EXCL;
  const int fd = fs::Open(path.c_str(), flags, 0600);
  if (fd < 0) return Status::FromErrno((create ? "create " : "open ") + path, errno);
  auto file = std::make_shared<SegmentFile>(fd, first_seq, path);
  if (create) {
    Status s = WriteAll(fd, kMagic, "write " + path);
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
  if (!failure_.ok()) return;
  failure_ = status;
  if (failure_listener_) failure_listener_();
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
    s = WriteAll(active_->fd, std::string_view(buffer_.data(), bytes / 2),
                 "write " + active_->path);
    if (s.ok()) s = Status::FromErrno("write " + active_->path, err);
  } else {
    s = WriteAll(active_->fd, std::string_view(buffer_.data(), bytes), "write " + active_->path);
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
    Status s = WriteAll(fd, kMagic, "write " + tmp);
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
        options_.dir + "/" + journal::SegmentFileName(segment_sizes_[deleted].first);
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
