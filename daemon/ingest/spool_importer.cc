#include "daemon/ingest/spool_importer.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/base/file_seam.h"
#include "daemon/ingest/event_canon.h"
#include "daemon/ingest/spool_line.h"
#include "daemon/redact/redact.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// One hand-off to the io thread holds at most this many events or bytes, so the io thread
// appends a bounded slice per loop pass and live ingest and `ferry status` interleave.
constexpr size_t kMaxChunkEvents = 1024;
constexpr size_t kMaxChunkBytes = 1u << 20;
// Bytes read from a spool file per read(2).
constexpr size_t kReadSize = 1u << 20;
// A spool line is one EVENT frame body (max_frame, 4 MiB by default): a "line" longer than
// this is not an event, and is not buffered further.
constexpr size_t kMaxLineBytes = 64u << 20;
// Files that inotify cannot announce (a .tmp whose writer died) are found by this rescan.
constexpr std::chrono::seconds kRescanInterval{5};
// A .tmp file whose writer still runs is left alone, unless it is this old: a client's
// budget is milliseconds, so by then the pid has been reused or the writer is stuck for good.
constexpr int64_t kStaleTmpSeconds = 600;
// Start() waits this long at most for the first count of the spool (a huge spool: status
// shows the count a little later).
constexpr std::chrono::seconds kFirstCountWait{2};

bool EndsWith(const std::string& s, std::string_view suffix) {
  return s.size() > suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool IsTmp(const std::string& name) { return name.front() == '.' && EndsWith(name, ".tmp"); }

int64_t NowNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::string Mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// "is a FIFO", ... for a spool entry that is not a regular file.
std::string NotRegular(mode_t mode) {
  if (S_ISFIFO(mode)) return "is a FIFO, not a regular file";
  if (S_ISLNK(mode)) return "is a symbolic link, not a regular file";
  if (S_ISDIR(mode)) return "is a directory, not a regular file";
  if (S_ISSOCK(mode)) return "is a socket, not a regular file";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "is a device, not a regular file";
  return "is not a regular file";
}

std::string NotOurs(uid_t owner) {
  return "belongs to uid " + std::to_string(owner) + ", not to ferryd's uid " +
         std::to_string(::geteuid());
}

// read(2) through the seam, retrying EINTR.
ssize_t ReadSome(int fd, char* buf, size_t n) {
  for (;;) {
    const ssize_t got = fs::Read(fd, buf, n);
    if (got < 0 && errno == EINTR) continue;
    return got;
  }
}

}  // namespace

Status CheckPrivateDir(const std::string& dir, const std::string& what, bool no_symlink) {
  struct stat st {};
  if (::lstat(dir.c_str(), &st) != 0) return Status::FromErrno("stat " + what + " " + dir, errno);
  if (S_ISLNK(st.st_mode)) {
    if (no_symlink) {
      char target[4096];
      const ssize_t n = ::readlink(dir.c_str(), target, sizeof target - 1);
      const std::string to = n > 0 ? std::string(target, static_cast<size_t>(n)) : "?";
      return Status::InvalidArgument(
          what + " " + dir + " is a symbolic link (to " + to +
          "); ferry keeps it only as a real directory of its own: remove the link (rm " + dir +
          ") and start again");
    }
    if (::stat(dir.c_str(), &st) != 0) return Status::FromErrno("stat " + what + " " + dir, errno);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::InvalidArgument(what + " " + dir + " is not a directory");
  }
  const uid_t me = ::geteuid();
  if (st.st_uid != me) {
    return Status::InvalidArgument(what + " " + dir + " (mode " + Mode(st.st_mode) +
                                   ") belongs to uid " + std::to_string(st.st_uid) +
                                   ", not to ferryd's uid " + std::to_string(me) +
                                   ": another user could read or forge its files; use a "
                                   "directory of your own (--state-dir) and start again");
  }
  if ((st.st_mode & 022) != 0) {
    return Status::InvalidArgument(what + " " + dir + " is mode " + Mode(st.st_mode) +
                                   " (owner uid " + std::to_string(st.st_uid) +
                                   "): other users can write to it; fix it with `chmod 700 " + dir +
                                   "` and start again");
  }
  if ((st.st_mode & 077) != 0) {
    if (::chmod(dir.c_str(), 0700) != 0) {
      return Status::FromErrno(what + " " + dir + " is readable by others and chmod 0700", errno);
    }
    spdlog::warn("{} {} was mode {}; set it to 0700", what, dir, Mode(st.st_mode));
  }
  return Status::Ok();
}

SpoolImporter::SpoolImporter(net::io_context& io, std::string dir, Journal& journal,
                             JournalCommitter& committer, DedupeWindow& window,
                             std::function<void(uint64_t)> on_written)
    : io_(io),
      dir_(std::move(dir)),
      journal_(journal),
      committer_(committer),
      window_(window),
      on_written_(std::move(on_written)),
      rescan_timer_(io) {}

SpoolImporter::~SpoolImporter() { Stop(); }

Status SpoolImporter::Start() {
  if (::mkdir(dir_.c_str(), 0700) != 0 && errno != EEXIST) {
    return Status::FromErrno("create spool directory " + dir_, errno);
  }
  Status s = CheckPrivateDir(dir_, "spool directory", /*no_symlink=*/true);
  if (!s.ok()) return s;
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Status::FromErrno("inotify_init1", errno);
  // IN_MOVED_TO: a client renamed a complete file in. IN_CLOSE_WRITE: a file written in
  // place (by hand, or a client whose rename failed) may be complete. IN_DONT_FOLLOW: the
  // directory was checked above; never watch what a symlink swapped in since points to.
  if (::inotify_add_watch(inotify_fd_, dir_.c_str(),
                          IN_MOVED_TO | IN_CLOSE_WRITE | IN_DONT_FOLLOW | IN_ONLYDIR) < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return Status::FromErrno("watch spool directory " + dir_, err);
  }
  watch_ = std::make_unique<net::posix::stream_descriptor>(io_, inotify_fd_);
  watch_buf_.resize(16u << 10);
  thread_ = std::thread([this] { Run(); });
  DoWatch();
  ArmRescan();
  RequestScan();
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait_for(lk, kFirstCountWait, [this] { return counted_ || stop_; });
  return Status::Ok();
}

void SpoolImporter::Stop() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    stopping_.store(true);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  rescan_timer_.cancel();
  if (watch_) watch_->close(ignored);  // closes inotify_fd_
  watch_.reset();
  inotify_fd_ = -1;
}

void SpoolImporter::SetLocalRedactor(std::shared_ptr<const Redactor> redactor) {
  std::lock_guard<std::mutex> lk(mu_);
  local_redactor_ = std::move(redactor);
}

SpoolPending SpoolImporter::Pending() const {
  return {pending_files_.load(std::memory_order_relaxed),
          pending_events_.load(std::memory_order_relaxed)};
}

SpoolCounters SpoolImporter::counters() const {
  SpoolCounters c;
  c.files_imported = files_imported_.load(std::memory_order_relaxed);
  c.events_imported = events_imported_.load(std::memory_order_relaxed);
  c.duplicates = duplicates_.load(std::memory_order_relaxed);
  c.torn_lines = torn_lines_.load(std::memory_order_relaxed);
  c.invalid_lines = invalid_lines_.load(std::memory_order_relaxed);
  c.files_rejected = files_rejected_.load(std::memory_order_relaxed);
  return c;
}

bool SpoolImporter::TEST_idle() const {
  std::lock_guard<std::mutex> lk(mu_);
  return idle_;
}

// ---------------------------------------------------------------------------------------
// io thread

void SpoolImporter::DoWatch() {
  watch_->async_read_some(net::buffer(watch_buf_), [this](const boost::system::error_code& ec,
                                                          size_t n) { OnWatch(ec, n); });
}

void SpoolImporter::OnWatch(const boost::system::error_code& ec, size_t n) {
  if (ec == net::error::operation_aborted || stopped_) return;
  if (ec) {
    spdlog::warn("spool: inotify read failed ({}); relying on the periodic rescan", ec.message());
    return;
  }
  bool wanted = false;
  for (size_t off = 0; off + sizeof(inotify_event) <= n;) {
    inotify_event ev;
    std::memcpy(&ev, watch_buf_.data() + off, sizeof ev);
    const char* name = watch_buf_.data() + off + sizeof ev;
    if ((ev.mask & IN_Q_OVERFLOW) ||
        (ev.len > 0 && EndsWith(std::string(name, ::strnlen(name, ev.len)), ".ndjson")))
      wanted = true;
    off += sizeof ev + ev.len;
  }
  if (wanted) RequestScan();
  DoWatch();
}

void SpoolImporter::ArmRescan() {
  rescan_timer_.expires_after(kRescanInterval);
  rescan_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    RequestScan();
    ArmRescan();
  });
}

void SpoolImporter::RequestScan() {
  if (stopped_ || journal_.failed()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    scan_requested_ = true;
    idle_ = false;
  }
  cv_.notify_all();
}

void SpoolImporter::OnChunk(Chunk chunk) {
  if (stopped_) return;  // the importer thread is gone; the file stays for the next start
  bool appended = false;
  if (!chunk_failed_ && !journal_.failed()) {
    for (const Event& ev : chunk.events) {
      if (window_.Contains(ev.id)) {
        duplicates_.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      uint64_t seq = 0;
      if (!journal_.Append(chunk.received, ev.body, &seq).ok()) {
        chunk_failed_ = true;
        break;
      }
      window_.Insert(ev.id);
      events_imported_.fetch_add(1, std::memory_order_relaxed);
      appended = true;
    }
  } else {
    chunk_failed_ = true;
  }
  if (appended) {
    Status s = journal_.Flush();
    if (!s.ok()) {
      // The journal is failed for good (sticky); the file stays for the next start.
      spdlog::error("spool: journal write failed; {} kept: {}", chunk.name, s.ToString());
      chunk_failed_ = true;
    } else {
      committer_.Written(journal_.active_segment(), journal_.written_seq(), /*sync_now=*/true);
      if (on_written_) on_written_(journal_.written_seq());
    }
  }
  std::vector<Removal> keep;
  if (chunk.last) {
    if (chunk_failed_) {
      keep.push_back({chunk.name, false, /*keep=*/true});
    } else {
      // Duplicates are dropped because an equal id is in the journal, maybe not yet
      // durable: a file waits for everything written so far, not only for its own records.
      awaiting_.push_back({journal_.written_seq(), chunk.name, chunk.rejected});
    }
    chunk_failed_ = false;
  }
  {
    std::lock_guard<std::mutex> lk(mu_);
    chunk_outstanding_ = false;
    journal_failed_ = journal_.failed();
    for (auto& r : keep) removals_.push_back(std::move(r));
  }
  cv_.notify_all();
  if (chunk.last) OnDurable(durable_seq_);
}

void SpoolImporter::OnDurable(uint64_t seq) {
  durable_seq_ = std::max(durable_seq_, seq);
  std::vector<Removal> done;
  while (!awaiting_.empty() && awaiting_.front().seq <= durable_seq_) {
    done.push_back({std::move(awaiting_.front().name), awaiting_.front().rejected, false});
    awaiting_.pop_front();
  }
  if (done.empty()) return;
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (auto& r : done) removals_.push_back(std::move(r));
  }
  cv_.notify_all();
}

// ---------------------------------------------------------------------------------------
// importer thread

void SpoolImporter::Run() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    cv_.wait(lk, [this] { return stop_ || scan_requested_ || !removals_.empty(); });
    if (stop_) return;
    std::vector<Removal> removals;
    removals.swap(removals_);
    const bool scan = scan_requested_ && !journal_failed_;
    scan_requested_ = false;
    idle_ = false;
    lk.unlock();
    if (!removals.empty()) DoRemovals(std::move(removals));
    if (scan) Scan();
    lk.lock();
    if (!scan_requested_ && removals_.empty()) idle_ = true;
  }
}

void SpoolImporter::Publish() {
  uint64_t events = 0;
  for (const auto& [name, k] : known_) events += k.lines;
  pending_files_.store(known_.size(), std::memory_order_relaxed);
  pending_events_.store(events, std::memory_order_relaxed);
}

void SpoolImporter::MoveAside(const std::string& name, const std::string& why) {
  known_.erase(name);
  if (cannot_move_.count(name)) return;
  const std::string path = dir_ + "/" + name;
  const std::string aside = path + ".rejected";
  if (fs::Rename(path.c_str(), aside.c_str()) != 0) {
    if (errno == ENOENT) return;
    cannot_move_.insert(name);
    spdlog::error("spool: {} {}; cannot move it aside ({}), ignoring it", path, why,
                  std::strerror(errno));
    return;
  }
  files_rejected_.fetch_add(1, std::memory_order_relaxed);
  spdlog::warn("spool: {} {}; not read, moved aside to {}", path, why, aside);
}

int SpoolImporter::OpenChecked(const std::string& name, struct stat* st) {
  const std::string path = dir_ + "/" + name;
  // O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOFOLLOW: never read what a
  // symlink points to (another user's file, /dev/zero, ...).
  const int fd = fs::Open(path.c_str(), O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return -1;  // removed meanwhile
    struct stat lst {};
    if (::lstat(path.c_str(), &lst) == 0 && !S_ISREG(lst.st_mode)) {
      MoveAside(name, NotRegular(lst.st_mode));
    } else if (!cannot_move_.count(name)) {
      cannot_move_.insert(name);  // logged once; retried at the next start
      spdlog::warn("spool: cannot open {}: {}; left in place", path, std::strerror(err));
    }
    return -1;
  }
  if (::fstat(fd, st) != 0) {
    spdlog::warn("spool: cannot stat {}: {}", path, std::strerror(errno));
    fs::Close(fd);
    return -1;
  }
  if (!S_ISREG(st->st_mode) || st->st_uid != ::geteuid()) {
    fs::Close(fd);
    MoveAside(name, !S_ISREG(st->st_mode) ? NotRegular(st->st_mode) : NotOurs(st->st_uid));
    return -1;
  }
  return fd;
}

bool SpoolImporter::Importable(const std::string& name, const struct stat& st) const {
  if (in_flight_.count(name)) return false;
  if (!IsTmp(name)) return true;
  // ".<pid>-<rand>.tmp": import only once its writer is gone (it was killed mid-write; a
  // torn last line is skipped), or when it is older than any writer could be.
  const long pid = std::strtol(name.c_str() + 1, nullptr, 10);
  if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  return ::time(nullptr) - st.st_mtime > kStaleTmpSeconds;
}

// Brings known_ up to date with the directory: counts the complete lines of files that are
// new or changed, moves aside what is not a regular file of ours, and publishes the counts.
void SpoolImporter::Recount(const std::vector<std::string>& names) {
  for (auto it = known_.begin(); it != known_.end();) {
    it = std::binary_search(names.begin(), names.end(), it->first) ? std::next(it)
                                                                   : known_.erase(it);
  }
  std::vector<char> buf(64u << 10);
  for (const std::string& name : names) {
    if (cannot_move_.count(name)) continue;
    struct stat st {};
    if (::fstatat(AT_FDCWD, (dir_ + "/" + name).c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      known_.erase(name);
      continue;
    }
    if (!S_ISREG(st.st_mode)) {
      MoveAside(name, NotRegular(st.st_mode));
      continue;
    }
    if (st.st_uid != ::geteuid()) {
      MoveAside(name, NotOurs(st.st_uid));
      continue;
    }
    auto it = known_.find(name);
    if (it != known_.end() && it->second.ino == st.st_ino && it->second.size == st.st_size &&
        it->second.mtime_ns == MtimeNs(st))
      continue;
    const int fd = OpenChecked(name, &st);
    if (fd < 0) continue;
    Known k{st.st_ino, st.st_size, MtimeNs(st), 0};
    ssize_t n = 0;
    while (!stopping_.load(std::memory_order_relaxed) &&
           (n = ReadSome(fd, buf.data(), buf.size())) > 0) {
      k.lines += static_cast<uint64_t>(std::count(buf.data(), buf.data() + n, '\n'));
    }
    fs::Close(fd);
    known_[name] = k;
  }
  Publish();
  {
    std::lock_guard<std::mutex> lk(mu_);
    counted_ = true;
  }
  cv_.notify_all();
}

void SpoolImporter::Scan() {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir_.c_str());
  if (!d) {
    spdlog::warn("spool: cannot list {}: {}", dir_, std::strerror(errno));
    return;
  }
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (EndsWith(name, ".ndjson") || IsTmp(name)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());  // <ts>-... names: oldest first
  Recount(names);
  for (const std::string& name : names) {
    auto it = known_.find(name);
    if (it == known_.end()) continue;  // moved aside or gone
    struct stat st {};
    st.st_mtime = static_cast<time_t>(it->second.mtime_ns / 1000000000);
    if (!Importable(name, st)) continue;
    {
      std::lock_guard<std::mutex> lk(mu_);
      if (stop_ || journal_failed_) return;
    }
    ImportFile(name);
  }
}

void SpoolImporter::ImportFile(const std::string& name) {
  struct stat st {};
  const int fd = OpenChecked(name, &st);
  if (fd < 0) {
    Publish();
    return;
  }
  const std::string path = dir_ + "/" + name;
  std::shared_ptr<const Redactor> redactor;
  {
    std::lock_guard<std::mutex> lk(mu_);
    redactor = local_redactor_;
  }
  Chunk chunk;
  chunk.name = name;
  chunk.received = NowNs();
  size_t chunk_bytes = 0;
  bool rejected = false;
  proto::EventRequest request;
  rapidjson::StringBuffer sb;
  std::string text;  // unparsed bytes: at most one partial line after each pass
  size_t line_no = 0;
  bool eof = false;
  while (!eof) {
    if (stopping_.load(std::memory_order_relaxed)) {
      fs::Close(fd);  // the file stays for the next start
      return;
    }
    const size_t old = text.size();
    text.resize(old + kReadSize);
    const ssize_t n = ReadSome(fd, text.data() + old, kReadSize);
    text.resize(old + (n > 0 ? static_cast<size_t>(n) : 0));
    if (n < 0) {
      spdlog::warn("spool: cannot read {}: {}; the file is kept as {}.rejected", path,
                   std::strerror(errno), name);
      rejected = true;
      break;
    }
    eof = n == 0;
    size_t pos = 0;
    while (pos < text.size()) {
      const size_t nl = text.find('\n', pos);
      if (nl == std::string::npos) break;
      ++line_no;
      const std::string_view line(text.data() + pos, nl - pos);
      pos = nl + 1;
      proto::Error error;
      const SpoolLine parsed = ParseSpoolLine(line, &request, &error);
      if (parsed == SpoolLine::kBlank) continue;
      if (parsed == SpoolLine::kInvalid) {
        invalid_lines_.fetch_add(1, std::memory_order_relaxed);
        rejected = true;
        spdlog::warn("spool: {}: line {} is not an event ({}); the file is kept as {}.rejected",
                     path, line_no, error.message, name);
        continue;
      }
      const rapidjson::Value& event = request.at(0);
      const auto& id = event["id"];
      sb.Clear();
      proto::JsonWriter writer(sb);
      WriteCanonicalEvent(request, 0, redactor.get(), writer);
      chunk.events.push_back({std::string(id.GetString(), id.GetStringLength()),
                              std::string(sb.GetString(), sb.GetSize())});
      chunk_bytes += sb.GetSize();
      if (chunk.events.size() >= kMaxChunkEvents || chunk_bytes >= kMaxChunkBytes) {
        Chunk next;
        next.name = name;
        next.received = chunk.received;
        if (!SendChunk(std::move(chunk))) {
          fs::Close(fd);
          return;
        }
        chunk = std::move(next);
        chunk_bytes = 0;
      }
    }
    text.erase(0, pos);
    if (eof && text.find_first_not_of(" \t\r") != std::string::npos) {
      // The writer was killed before its line was whole: what there is cannot be trusted.
      torn_lines_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("spool: {}: line {} is torn ({} bytes without a newline); skipped", path,
                   line_no + 1, text.size());
    } else if (text.size() > kMaxLineBytes) {
      invalid_lines_.fetch_add(1, std::memory_order_relaxed);
      rejected = true;
      spdlog::warn(
          "spool: {}: line {} is over {} bytes, not an event; the file is kept as "
          "{}.rejected",
          path, line_no + 1, kMaxLineBytes, name);
      break;
    }
  }
  fs::Close(fd);
  chunk.last = true;
  chunk.rejected = rejected;
  in_flight_.insert(name);
  SendChunk(std::move(chunk));
}

bool SpoolImporter::SendChunk(Chunk chunk) {
  std::unique_lock<std::mutex> lk(mu_);
  if (stop_) return false;
  chunk_outstanding_ = true;
  net::post(io_, [this, c = std::make_shared<Chunk>(std::move(chunk))]() mutable {
    OnChunk(std::move(*c));
  });
  cv_.wait(lk, [this] { return stop_ || !chunk_outstanding_; });
  return !stop_;
}

void SpoolImporter::DoRemovals(std::vector<Removal> removals) {
  bool removed = false;
  for (const Removal& r : removals) {
    in_flight_.erase(r.name);
    if (r.keep) continue;
    const std::string path = dir_ + "/" + r.name;
    const int rc = r.rejected ? fs::Rename(path.c_str(), (path + ".rejected").c_str())
                              : fs::Unlink(path.c_str());
    if (rc != 0 && errno != ENOENT) {
      spdlog::warn("spool: cannot remove {}: {}", path, std::strerror(errno));
    }
    (r.rejected ? files_rejected_ : files_imported_).fetch_add(1, std::memory_order_relaxed);
    known_.erase(r.name);
    removed = true;
  }
  Publish();
  if (removed) {
    // Removing is safe to lose in a crash (a file imported twice is deduplicated); the
    // directory sync only makes `ferry status` right after a power cut.
    const int dfd = fs::Open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fs::Fsync(dfd);
      fs::Close(dfd);
    }
  }
}

}  // namespace ferry
