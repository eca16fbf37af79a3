#include "daemon/spool_importer.h"

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

#include "daemon/file_util.h"
#include "daemon/redact.h"
#include "daemon/spool_line.h"
#include "proto/messages.h"

namespace ferry {
namespace {

// Bounds on one pass of the io thread, so a large spool cannot stall ingest: the rest is
// imported by the next pass, posted right after.
constexpr size_t kMaxFilesPerScan = 256;
constexpr size_t kMaxBytesPerScan = 32u << 20;
// Files that inotify cannot announce (a .tmp whose writer died) are found by this rescan.
constexpr std::chrono::seconds kRescanInterval{5};
// A .tmp file whose writer still runs is left alone, unless it is this old: a client's
// budget is milliseconds, so by then the pid has been reused or the writer is stuck for good.
constexpr int64_t kStaleTmpSeconds = 600;

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

std::vector<std::string> ListSpool(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (EndsWith(name, ".ndjson") || IsTmp(name)) names.push_back(name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());  // <ts>-... names: oldest first
  return names;
}

}  // namespace

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
  inotify_fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (inotify_fd_ < 0) return Status::FromErrno("inotify_init1", errno);
  // IN_MOVED_TO: a client renamed a complete file in. IN_CLOSE_WRITE: a file written in
  // place (by hand, or a client whose rename failed) may be complete.
  if (::inotify_add_watch(inotify_fd_, dir_.c_str(), IN_MOVED_TO | IN_CLOSE_WRITE) < 0) {
    const int err = errno;
    ::close(inotify_fd_);
    inotify_fd_ = -1;
    return Status::FromErrno("watch spool directory " + dir_, err);
  }
  watch_ = std::make_unique<net::posix::stream_descriptor>(io_, inotify_fd_);
  watch_buf_.resize(64u << 10);
  DoWatch();
  ArmRescan();
  ScheduleScan();
  return Status::Ok();
}

void SpoolImporter::Stop() {
  if (stopped_) return;
  stopped_ = true;
  boost::system::error_code ignored;
  rescan_timer_.cancel();
  if (watch_) watch_->close(ignored);  // closes inotify_fd_
  watch_.reset();
  inotify_fd_ = -1;
}

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
  if (wanted) ScheduleScan();
  DoWatch();
}

void SpoolImporter::ArmRescan() {
  rescan_timer_.expires_after(kRescanInterval);
  rescan_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    ScheduleScan();
    ArmRescan();
  });
}

void SpoolImporter::ScheduleScan() {
  if (scan_posted_ || stopped_) return;
  scan_posted_ = true;
  net::post(io_, [this] { Scan(); });
}

bool SpoolImporter::Importable(const std::string& name) const {
  if (in_flight_.count(name)) return false;
  if (!IsTmp(name)) return true;
  // ".<pid>-<rand>.tmp": import only once its writer is gone (it was killed mid-write; a
  // torn last line is skipped), or when it is older than any writer could be.
  const long pid = std::strtol(name.c_str() + 1, nullptr, 10);
  if (pid > 0 && ::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  struct stat st {};
  if (::stat((dir_ + "/" + name).c_str(), &st) != 0) return false;
  return ::time(nullptr) - st.st_mtime > kStaleTmpSeconds;
}

void SpoolImporter::Scan() {
  scan_posted_ = false;
  if (stopped_ || journal_.failed()) return;
  Batch batch;
  size_t bytes = 0;
  bool more = false, appended = false;
  for (const std::string& name : ListSpool(dir_)) {
    if (!Importable(name)) continue;
    if (batch.names.size() >= kMaxFilesPerScan || bytes >= kMaxBytesPerScan) {
      more = true;
      break;
    }
    bool rejected = false;
    size_t file_bytes = 0;
    const uint64_t before = journal_.last_seq();
    if (!ImportFile(name, &rejected, &file_bytes)) break;  // journal failed: keep the file
    appended |= journal_.last_seq() != before;
    bytes += file_bytes;
    batch.names.push_back(name);
    batch.rejected.push_back(rejected);
    in_flight_.insert(name);
  }
  if (batch.names.empty()) return;
  if (appended) {
    Status s = journal_.Flush();
    if (!s.ok()) {
      // The journal is failed for good (sticky); the files stay for the next start.
      spdlog::error("spool: journal write failed; {} file(s) kept: {}", batch.names.size(),
                    s.ToString());
      for (const auto& name : batch.names) in_flight_.erase(name);
      return;
    }
    committer_.Written(journal_.active_segment(), journal_.written_seq(), /*sync_now=*/true);
    if (on_written_) on_written_(journal_.written_seq());
  }
  // Duplicates are dropped because an equal id is in the journal, maybe not yet durable:
  // a file waits for everything written so far, not only for its own records.
  batch.seq = journal_.written_seq();
  awaiting_.push_back(std::move(batch));
  OnDurable(durable_seq_);
  if (more) ScheduleScan();
}

bool SpoolImporter::ImportFile(const std::string& name, bool* rejected, size_t* bytes) {
  const std::string path = dir_ + "/" + name;
  std::string text;
  if (!ReadWholeFile(path, &text)) {
    spdlog::warn("spool: cannot read {}: {}", path, std::strerror(errno));
    *rejected = true;
    return true;
  }
  *bytes = text.size();
  const int64_t received = NowNs();
  proto::EventRequest request;
  rapidjson::StringBuffer sb;
  size_t pos = 0, line_no = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    ++line_no;
    if (nl == std::string::npos) {
      // The writer was killed before its line was whole: what there is cannot be trusted.
      counters_.torn_lines++;
      spdlog::warn("spool: {}: line {} is torn ({} bytes without a newline); skipped", path,
                   line_no, text.size() - pos);
      break;
    }
    const std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    proto::Error error;
    const SpoolLine kind = ParseSpoolLine(line, &request, &error);
    if (kind == SpoolLine::kBlank) continue;
    if (kind == SpoolLine::kInvalid) {
      counters_.invalid_lines++;
      *rejected = true;
      spdlog::warn("spool: {}: line {} is not an event ({}); the file is kept as {}.rejected", path,
                   line_no, error.message, name);
      continue;
    }
    const rapidjson::Value& event = request.at(0);
    const auto& id = event["id"];
    const std::string_view id_view(id.GetString(), id.GetStringLength());
    if (window_.Contains(id_view)) {
      counters_.duplicates++;
      continue;
    }
    sb.Clear();
    proto::JsonWriter writer(sb);
    if (local_redactor_) {
      rapidjson::Document copy;
      copy.CopyFrom(event, copy.GetAllocator());
      local_redactor_->RedactJson(&copy, copy.GetAllocator());
      proto::WriteEnvelope(copy, writer);
    } else {
      proto::WriteEnvelope(event, writer);
    }
    uint64_t seq = 0;
    Status s = journal_.Append(received, std::string_view(sb.GetString(), sb.GetSize()), &seq);
    if (!s.ok()) return false;
    window_.Insert(id_view);
    counters_.events_imported++;
  }
  return true;
}

void SpoolImporter::OnDurable(uint64_t seq) {
  durable_seq_ = std::max(durable_seq_, seq);
  bool removed = false;
  while (!awaiting_.empty() && awaiting_.front().seq <= durable_seq_) {
    Batch& b = awaiting_.front();
    for (size_t i = 0; i < b.names.size(); ++i) {
      const std::string path = dir_ + "/" + b.names[i];
      const int rc = b.rejected[i] ? ::rename(path.c_str(), (path + ".rejected").c_str())
                                   : ::unlink(path.c_str());
      if (rc != 0 && errno != ENOENT) {
        spdlog::warn("spool: cannot remove {}: {}", path, std::strerror(errno));
      }
      counters_.files_imported += !b.rejected[i];
      counters_.files_rejected += b.rejected[i];
      in_flight_.erase(b.names[i]);
    }
    awaiting_.pop_front();
    removed = true;
  }
  if (removed) {
    // Removing is safe to lose in a crash (a file imported twice is deduplicated); the
    // directory sync only makes `ferry status` right after a power cut.
    const int dfd = ::open(dir_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  }
}

SpoolPending SpoolImporter::Pending() const {
  SpoolPending p;
  std::string text;
  for (const std::string& name : ListSpool(dir_)) {
    if (!ReadWholeFile(dir_ + "/" + name, &text)) continue;
    p.files++;
    p.events += static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
  }
  return p;
}

}  // namespace ferry
