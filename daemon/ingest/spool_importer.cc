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
#include "daemon/base/thread_role.h"
#include "daemon/ingest/event_canon.h"
#include "daemon/ingest/spool_line.h"
#include "daemon/ingest/spool_util.h"
#include "daemon/redact/redact.h"
#include "proto/messages.h"

namespace ferry {
namespace {

using spool::EndsWith;
using spool::ReadSome;

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
// Start() waits this long at most for the first count of the spool (a huge spool: status
// shows the count a little later).
constexpr std::chrono::seconds kFirstCountWait{2};

}  // namespace

SpoolImporter::SpoolImporter(net::io_context& io, std::string dir, Journal& journal,
                             JournalCommitter& committer, DedupeWindow& window,
                             std::function<void(uint64_t)> on_written)
    : io_(io),
      dir_(std::move(dir)),
      journal_(journal),
      committer_(committer),
      on_written_(std::move(on_written)),
      admitter_(journal, &window),
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
  thread_ = std::thread([this] {
    SetThreadRole("spool", ThreadClass::kBackground);
    Run();
  });
  DoWatch();
  ArmRescan();
  RequestScan();
  const auto until = std::chrono::steady_clock::now() + kFirstCountWait;
  MutexLock lk(mu_);
  while (!counted_ && !stop_ && std::chrono::steady_clock::now() < until) cv_.WaitUntil(lk, until);
  return Status::Ok();
}

void SpoolImporter::Stop() {
  {
    MutexLock lk(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
    stopping_.store(true);
  }
  cv_.NotifyAll();
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
  MutexLock lk(mu_);
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
  MutexLock lk(mu_);
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
    MutexLock lk(mu_);
    scan_requested_ = true;
    idle_ = false;
  }
  cv_.NotifyAll();
}

void SpoolImporter::OnChunk(Chunk chunk) {
  if (stopped_) return;  // the importer thread is gone; the file stays for the next start
  bool appended = false;
  if (!chunk_failed_ && !journal_.failed()) {
    const AdmitResult admitted = admitter_.AdmitCanonical(chunk.events, chunk.received);
    duplicates_.fetch_add(admitted.duplicates, std::memory_order_relaxed);
    events_imported_.fetch_add(admitted.appended, std::memory_order_relaxed);
    appended = admitted.appended > 0;
    if (!admitted.status.ok()) chunk_failed_ = true;
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
    MutexLock lk(mu_);
    chunk_outstanding_ = false;
    journal_failed_ = journal_.failed();
    for (auto& r : keep) removals_.push_back(std::move(r));
  }
  cv_.NotifyAll();
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
    MutexLock lk(mu_);
    for (auto& r : done) removals_.push_back(std::move(r));
  }
  cv_.NotifyAll();
}

// ---------------------------------------------------------------------------------------
// importer thread

void SpoolImporter::Run() {
  MutexLock lk(mu_);
  for (;;) {
    while (!stop_ && !scan_requested_ && removals_.empty()) cv_.Wait(lk);
    if (stop_) return;
    std::vector<Removal> removals;
    removals.swap(removals_);
    const bool scan = scan_requested_ && !journal_failed_;
    scan_requested_ = false;
    idle_ = false;
    lk.Unlock();
    if (!removals.empty()) DoRemovals(std::move(removals));
    if (scan) Scan();
    lk.Lock();
    if (!scan_requested_ && removals_.empty()) idle_ = true;
  }
}

void SpoolImporter::ImportFile(const std::string& name) {
  struct stat st {};
  const int fd = OpenChecked(name, &st);
  if (fd < 0) {
    Publish();
    return;
  }
  FileImport f;
  f.name = name;
  f.path = dir_ + "/" + name;
  {
    MutexLock lk(mu_);
    f.redactor = local_redactor_;
  }
  f.chunk.name = name;
  f.chunk.received = NowNs();
  std::string text;  // unparsed bytes: at most one partial line after each pass
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
      spdlog::warn("spool: cannot read {}: {}; the file is kept as {}.rejected", f.path,
                   std::strerror(errno), name);
      f.rejected = true;
      break;
    }
    eof = n == 0;
    size_t pos = 0;
    if (!TakeLines(f, text, &pos)) {
      fs::Close(fd);  // stopping: the file stays for the next start
      return;
    }
    text.erase(0, pos);
    if (eof && text.find_first_not_of(" \t\r") != std::string::npos) {
      // The writer was killed before its line was whole: what there is cannot be trusted.
      torn_lines_.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("spool: {}: line {} is torn ({} bytes without a newline); skipped", f.path,
                   f.line_no + 1, text.size());
    } else if (text.size() > kMaxLineBytes) {
      invalid_lines_.fetch_add(1, std::memory_order_relaxed);
      f.rejected = true;
      spdlog::warn(
          "spool: {}: line {} is over {} bytes, not an event; the file is kept as "
          "{}.rejected",
          f.path, f.line_no + 1, kMaxLineBytes, name);
      break;
    }
  }
  fs::Close(fd);
  f.chunk.last = true;
  f.chunk.rejected = f.rejected;
  in_flight_.insert(name);
  SendChunk(std::move(f.chunk));
}

// Parses the complete lines of `text` from *pos on (leaving *pos after the last newline),
// canonicalises their events into f.chunk, and hands full chunks to the io thread. False
// when the importer is stopping.
bool SpoolImporter::TakeLines(FileImport& f, const std::string& text, size_t* pos) {
  while (*pos < text.size()) {
    const size_t nl = text.find('\n', *pos);
    if (nl == std::string::npos) break;
    ++f.line_no;
    const std::string_view line(text.data() + *pos, nl - *pos);
    *pos = nl + 1;
    proto::Error error;
    const SpoolLine parsed = ParseSpoolLine(line, &f.request, &error);
    if (parsed == SpoolLine::kBlank) continue;
    if (parsed == SpoolLine::kInvalid) {
      invalid_lines_.fetch_add(1, std::memory_order_relaxed);
      f.rejected = true;
      spdlog::warn("spool: {}: line {} is not an event ({}); the file is kept as {}.rejected",
                   f.path, f.line_no, error.message, f.name);
      continue;
    }
    const auto& id = f.request.at(0)["id"];
    f.body.Clear();
    proto::JsonWriter writer(f.body);
    WriteCanonicalEvent(f.request, 0, f.redactor.get(), writer);
    f.chunk.events.push_back(CanonicalEvent{std::string(id.GetString(), id.GetStringLength()),
                                            std::string(f.body.GetString(), f.body.GetSize()),
                                            {}});
    MakeTwinProbe(f.request.at(0),
                  f.request.payload_too_deep(0) ? std::string_view() : f.request.payload_json(0),
                  &f.chunk.events.back().twin);
    f.chunk_bytes += f.body.GetSize();
    if (f.chunk.events.size() >= kMaxChunkEvents || f.chunk_bytes >= kMaxChunkBytes) {
      Chunk next;
      next.name = f.name;
      next.received = f.chunk.received;
      if (!SendChunk(std::move(f.chunk))) return false;
      f.chunk = std::move(next);
      f.chunk_bytes = 0;
    }
  }
  return true;
}

bool SpoolImporter::SendChunk(Chunk chunk) {
  MutexLock lk(mu_);
  if (stop_) return false;
  chunk_outstanding_ = true;
  net::post(io_, [this, c = std::make_shared<Chunk>(std::move(chunk))]() mutable {
    OnChunk(std::move(*c));
  });
  while (!stop_ && chunk_outstanding_) cv_.Wait(lk);
  return !stop_;
}

}  // namespace ferry
