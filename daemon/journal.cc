#include "daemon/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "daemon/fault_injection.h"
#include "daemon/journal_format.h"

namespace ferry {
namespace {

std::string Join(const std::string& dir, const std::string& name) { return dir + "/" + name; }

Status ReadWholeFile(const std::string& path, std::string* out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  out->clear();
  char buf[1 << 16];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::close(fd);
      return Status::FromErrno("read " + path, err);
    }
    if (n == 0) break;
    out->append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return Status::Ok();
}

Status WriteAll(int fd, const char* data, size_t n, const std::string& what) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return Status::FromErrno(what, errno);
    data += w;
    n -= static_cast<size_t>(w);
  }
  return Status::Ok();
}

Status SyncDir(int dir_fd, const std::string& dir) {
  if (::fsync(dir_fd) != 0) return Status::FromErrno("fsync directory " + dir, errno);
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
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0 && (errno != EEXIST || n > 1000)) return Status::FromErrno("create " + path, errno);
    if (fd < 0) path = base + "." + std::to_string(n);
  }
  Status s = WriteAll(fd, bytes.data(), bytes.size(), "write " + path);
  if (s.ok() && ::fsync(fd) != 0) s = Status::FromErrno("fsync " + path, errno);
  ::close(fd);
  if (s.ok()) s = SyncDir(dir_fd, dir);
  if (s.ok()) *saved_path = path;
  return s;
}

}  // namespace

SegmentFile::~SegmentFile() {
  if (fd >= 0) ::close(fd);
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

Journal::Journal(Options options) : options_(std::move(options)) {}

Journal::~Journal() {
  if (dir_fd_ >= 0) ::close(dir_fd_);
}

Status Journal::Open(const Options& options, std::unique_ptr<Journal>* journal,
                     RecoveryReport* report) {
  if (::mkdir(options.dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno("create journal directory " + options.dir, errno);
  }
  std::unique_ptr<Journal> j(new Journal(options));
  j->dir_fd_ = ::open(options.dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (j->dir_fd_ < 0) return Status::FromErrno("open journal directory " + options.dir, errno);
  *report = RecoveryReport();
  Status s = j->Recover(report);
  if (!s.ok()) return s;
  *journal = std::move(j);
  return Status::Ok();
}

// Only the last segment can hold a torn write from a process crash: the writer appends to
// nothing else, and the committer syncs a closed segment as soon as it is closed. So recovery
// scans just that one, and the name of each segment fixes the seq of its first record, which
// makes the last seq exact even when the last segment lost every record. Damage in an older
// segment (a power loss before that sync, bit rot) is left to readers, which report it and
// skip to the next segment (docs/journal-format.md, "Recovery").
Status Journal::Recover(RecoveryReport* report) {
  std::vector<uint64_t> seqs;
  Status s = ListSegments(options_.dir, &seqs);
  if (!s.ok()) return s;
  for (size_t i = 0; i + 1 < seqs.size(); ++i) {
    struct stat st {};
    const std::string path = Join(options_.dir, journal::SegmentFileName(seqs[i]));
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno("stat " + path, errno);
    segment_sizes_.emplace_back(seqs[i], static_cast<uint64_t>(st.st_size));
  }
  if (seqs.empty()) {
    s = OpenSegment(1, /*create=*/true);
    report->segments = 1;
    return s;
  }

  const uint64_t first = seqs.back();
  const std::string path = Join(options_.dir, journal::SegmentFileName(first));
  std::string data;
  s = ReadWholeFile(path, &data);
  if (!s.ok()) return s;

  size_t valid_end = 0;
  uint64_t expected = first;
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
    if (::truncate(path.c_str(), static_cast<off_t>(valid_end)) != 0) {
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
  if (::fdatasync(active_->fd) != 0) return Status::FromErrno("fdatasync " + path, errno);
  active_size_ = valid_end;
  active_records_ = expected - first;
  segment_sizes_.emplace_back(first, active_size_);
  next_seq_ = expected;
  written_seq_ = expected - 1;
  report->last_seq = written_seq_;
  report->segments = segment_sizes_.size();
  return Status::Ok();
}

Status Journal::OpenSegment(uint64_t first_seq, bool create) {
  const std::string path = Join(options_.dir, journal::SegmentFileName(first_seq));
  int flags = O_WRONLY | O_APPEND | O_CLOEXEC;
  if (create) flags |= O_CREAT | O_EXCL;
  const int fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) return Status::FromErrno((create ? "create " : "open ") + path, errno);
  active_ = std::make_shared<SegmentFile>(fd, first_seq, path);
  if (create) {
    Status s = WriteAll(fd, journal::kSegmentMagic, journal::kMagicSize, "write " + path);
    if (s.ok()) s = SyncDir(dir_fd_, options_.dir);
    if (!s.ok()) return s;
    active_size_ = journal::kMagicSize;
    active_records_ = 0;
    segment_sizes_.emplace_back(first_seq, active_size_);
    next_seq_ = first_seq;
    written_seq_ = first_seq - 1;
  }
  return Status::Ok();
}

Status Journal::Append(int64_t received_ns, std::string_view body, uint64_t* seq) {
  if (!failure_.ok()) return failure_;
  if (body.size() > journal::kMaxRecordBody) {
    return Status::InvalidArgument("record of " + std::to_string(body.size()) +
                                   " bytes is over the journal limit");
  }
  const size_t record_size = journal::kRecordHeaderSize + body.size();
  if (active_records_ + (next_seq_ - 1 - written_seq_) > 0 &&
      active_size_ + buffer_.size() + record_size > options_.segment_bytes) {
    Status s = WriteBuffered();
    if (s.ok()) s = Roll();
    if (!s.ok()) return s;
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
  // A segment without records is never rolled: the new one would get the same name (its
  // first seq), and creating it would fail and make the journal refuse appends.
  if (s.ok() && active_records_ > 0 && active_size_ >= options_.segment_bytes) s = Roll();
  return s;
}

Status Journal::WriteBuffered() {
  if (buffer_.empty()) return Status::Ok();
  Status s;
  if (const int err = fault::Check(fault::Point::kWrite); err != 0) {
    // Simulate a device that takes part of the write and then fails.
    s = WriteAll(active_->fd, buffer_.data(), buffer_.size() / 2, "write " + active_->path);
    if (s.ok()) s = Status::FromErrno("write " + active_->path, err);
  } else {
    s = WriteAll(active_->fd, buffer_.data(), buffer_.size(), "write " + active_->path);
  }
  if (!s.ok()) {
    // Cut any partial record so the file ends on a whole record; readers and recovery then
    // never see a record we did not ack. The seqs we handed out are given back.
    if (::ftruncate(active_->fd, static_cast<off_t>(active_size_)) != 0) {
      s = Status::IOError(s.message() + "; truncating back to " + std::to_string(active_size_) +
                          " also failed: " + std::strerror(errno));
    }
    buffer_.clear();
    next_seq_ = written_seq_ + 1;
    failure_ = s;
    return s;
  }
  active_size_ += buffer_.size();
  segment_sizes_.back().second = active_size_;
  active_records_ += next_seq_ - 1 - written_seq_;
  written_seq_ = next_seq_ - 1;
  buffer_.clear();
  return Status::Ok();
}

Status Journal::Roll() {
  std::shared_ptr<SegmentFile> closed = active_;
  const uint64_t closed_last = written_seq_;
  Status s = OpenSegment(next_seq_, /*create=*/true);
  if (!s.ok()) {
    active_ = closed;
    failure_ = s;
    return s;
  }
  if (roll_cb_) roll_cb_(std::move(closed), closed_last);
  return Status::Ok();
}

void Journal::SetFailed(const Status& status) {
  if (failure_.ok()) failure_ = status;
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
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
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
