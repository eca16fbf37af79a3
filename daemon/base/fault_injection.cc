#include "daemon/base/fault_injection.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <string>
#include <thread>

#include <pthread.h>
#include <signal.h>

namespace ferry::fault {
namespace {

struct FaultPoint {
  std::atomic<int64_t> remaining{-1};
  std::atomic<int> error{0};
};
FaultPoint g_points[2];

FaultPoint& At(Point p) { return g_points[static_cast<int>(p)]; }

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string Normalize(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

bool ReadAll(const std::string& path, std::string* out, size_t limit) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  out->clear();
  char buf[1 << 16];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) {
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > limit) break;
  }
  ::close(fd);
  return n == 0;
}

bool WriteNew(const std::string& path, const std::string& contents) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return false;
  size_t done = 0;
  while (done < contents.size()) {
    const ssize_t w = ::write(fd, contents.data() + done, contents.size() - done);
    if (w <= 0) break;
    done += static_cast<size_t>(w);
  }
  ::close(fd);
  return done == contents.size();
}

bool ParseOp(std::string_view s, Op* op) {
  static const std::pair<std::string_view, Op> kOps[] = {
      {"open", Op::kOpen},     {"close", Op::kClose},  {"read", Op::kRead},
      {"write", Op::kWrite},   {"sync", Op::kSync},    {"truncate", Op::kTruncate},
      {"rename", Op::kRename}, {"unlink", Op::kUnlink}};
  for (const auto& [name, value] : kOps) {
    if (s == name) {
      *op = value;
      return true;
    }
  }
  return false;
}

bool ParseErrno(std::string_view s, int* err) {
  static const std::pair<std::string_view, int> kErrnos[] = {
      {"EIO", EIO},       {"ENOSPC", ENOSPC}, {"EACCES", EACCES}, {"EPERM", EPERM},
      {"EROFS", EROFS},   {"EMFILE", EMFILE}, {"ENFILE", ENFILE}, {"EDQUOT", EDQUOT},
      {"EAGAIN", EAGAIN}, {"EINTR", EINTR},   {"ENOENT", ENOENT}};
  for (const auto& [name, value] : kErrnos) {
    if (s == name) {
      *err = value;
      return true;
    }
  }
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *err);
  return ec == std::errc() && ptr == s.data() + s.size() && *err > 0;
}

bool ParseInt(std::string_view s, int64_t* v) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), *v);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::vector<std::string_view> SplitColons(std::string_view s) {
  std::vector<std::string_view> parts;
  for (;;) {
    const size_t colon = s.find(':');
    parts.push_back(s.substr(0, colon));
    if (colon == std::string_view::npos) break;
    s = s.substr(colon + 1);
  }
  return parts;
}

// fail=OP:ERRNO:SUBSTR[:AFTER[:TIMES]] or short=OP:SUBSTR[:AFTER[:TIMES]]
bool ParseRule(std::string_view value, bool short_io, Rule* rule) {
  const std::vector<std::string_view> parts = SplitColons(value);
  size_t i = 0;
  rule->short_io = short_io;
  if (parts.size() < (short_io ? 2u : 3u) || parts.size() > (short_io ? 4u : 5u)) return false;
  if (!ParseOp(parts[i++], &rule->op)) return false;
  if (short_io) {
    if (rule->op != Op::kRead && rule->op != Op::kWrite) return false;
  } else if (!ParseErrno(parts[i++], &rule->error_number)) {
    return false;
  }
  rule->path = std::string(parts[i++]);
  if (i < parts.size() && !ParseInt(parts[i++], &rule->after)) return false;
  if (i < parts.size() && !ParseInt(parts[i++], &rule->times)) return false;
  return rule->after >= 0 && rule->times >= -1;
}

FaultFileSystem& SpecFileSystem(bool track_sync) {
  static FaultFileSystem* fs = new FaultFileSystem(track_sync);  // never destroyed
  return *fs;
}

// The power_loss signal is blocked in the calling thread (main, before any other thread
// starts, so every thread inherits the mask) and taken by one thread with sigwait.
void StartPowerLossThread(int signo) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, signo);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread([set] {
    int got = 0;
    while (sigwait(&set, &got) != 0) {
    }
    SpecFileSystem(true).PowerLossAndExit();
  }).detach();
}

}  // namespace

void Arm(Point point, int64_t after, int error_number) {
  At(point).error.store(error_number);
  At(point).remaining.store(after);
}

void DisarmAll() {
  for (auto& p : g_points) p.remaining.store(-1);
}

int Check(Point point) {
  FaultPoint& p = At(point);
  int64_t left = p.remaining.load(std::memory_order_relaxed);
  while (left >= 0) {
    if (left == 0) return p.error.load();
    if (p.remaining.compare_exchange_weak(left, left - 1)) return 0;
  }
  return 0;
}

bool ArmFromSpec(std::string_view spec) {
  struct PointArm {
    Point point;
    int64_t after;
    int err;
  };
  std::vector<PointArm> points;
  std::vector<Rule> rules;
  int power_loss_signal = 0;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return false;
    const std::string_view key = item.substr(0, eq);
    const std::string_view value = item.substr(eq + 1);
    if (key == "fail" || key == "short") {
      Rule rule;
      if (!ParseRule(value, key == "short", &rule)) return false;
      rules.push_back(std::move(rule));
      continue;
    }
    if (key == "power_loss") {
      if (value == "SIGUSR1") {
        power_loss_signal = SIGUSR1;
      } else if (value == "SIGUSR2") {
        power_loss_signal = SIGUSR2;
      } else {
        return false;
      }
      continue;
    }
    int64_t n = 0;
    if (!ParseInt(value, &n)) return false;
    if (key == "write_fail_after") {
      points.push_back({Point::kWrite, n, ENOSPC});
    } else if (key == "fsync_fail_after") {
      points.push_back({Point::kSync, n, EIO});
    } else {
      return false;
    }
  }
  for (const PointArm& p : points) Arm(p.point, p.after, p.err);
  if (!rules.empty() || power_loss_signal != 0) {
    FaultFileSystem& ffs = SpecFileSystem(/*track_sync=*/power_loss_signal != 0);
    for (Rule& r : rules) ffs.AddRule(std::move(r));
    fs::Install(&ffs);
  }
  if (power_loss_signal != 0) StartPowerLossThread(power_loss_signal);
  return true;
}

// ---- FaultFileSystem ----

void FaultFileSystem::AddRule(Rule rule) {
  MutexLock lock(mu_);
  rules_.push_back({std::move(rule), 0, 0});
}

void FaultFileSystem::ClearRules() {
  MutexLock lock(mu_);
  rules_.clear();
}

int64_t FaultFileSystem::Faults(size_t index) const {
  MutexLock lock(mu_);
  return index < rules_.size() ? rules_[index].faults : 0;
}

int64_t FaultFileSystem::TotalFaults() const {
  MutexLock lock(mu_);
  int64_t total = 0;
  for (const auto& r : rules_) total += r.faults;
  return total;
}

FaultFileSystem::Verdict FaultFileSystem::Match(Op op, const std::string& path, int* err) {
  for (RuleState& r : rules_) {
    if (r.rule.op != op) continue;
    if (!r.rule.path.empty() && path.find(r.rule.path) == std::string::npos) continue;
    if (r.seen++ < r.rule.after) continue;
    if (r.rule.times >= 0 && r.faults >= r.rule.times) continue;
    ++r.faults;
    if (r.rule.short_io) return Verdict::kShort;
    *err = r.rule.error_number;
    return Verdict::kFail;
  }
  return Verdict::kProceed;
}

std::string FaultFileSystem::PathOf(int fd) const {
  auto it = fd_paths_.find(fd);
  return it == fd_paths_.end() ? std::string() : it->second;
}

int FaultFileSystem::Open(const char* path, int flags, mode_t mode) {
  MutexLock lock(mu_);
  const std::string p = Normalize(path);
  int err = 0;
  if (Match(Op::kOpen, p, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  struct stat before {};
  const bool existed = ::stat(path, &before) == 0;
  const int fd = ::open(path, flags, mode);
  if (fd < 0) return fd;
  fd_paths_[fd] = p;
  if (track_sync_ && !files_.count(p)) {
    struct stat st {};
    const bool regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (regular) {
      FileState& f = files_[p];
      f.new_entry = !existed;
      f.synced_size = existed ? before.st_size : 0;
    }
  }
  return fd;
}

int FaultFileSystem::Close(int fd) {
  MutexLock lock(mu_);
  int err = 0;
  const std::string p = PathOf(fd);
  fd_paths_.erase(fd);
  const int rc = ::close(fd);  // the fd is released even when we report a failure
  if (Match(Op::kClose, p, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  return rc;
}

// The rule check shared by read, pread and write: false (errno set) when the call must fail;
// a short rule halves *n (at least one byte is still transferred).
bool FaultFileSystem::AdmitTransfer(Op op, int fd, size_t* n) {
  MutexLock lock(mu_);
  int err = 0;
  const Verdict v = Match(op, PathOf(fd), &err);
  if (v == Verdict::kFail) {
    errno = err;
    return false;
  }
  if (v == Verdict::kShort && *n > 1) *n /= 2;
  return true;
}

ssize_t FaultFileSystem::Read(int fd, void* buf, size_t n) {
  return AdmitTransfer(Op::kRead, fd, &n) ? ::read(fd, buf, n) : -1;
}

ssize_t FaultFileSystem::Pread(int fd, void* buf, size_t n, off_t offset) {
  return AdmitTransfer(Op::kRead, fd, &n) ? ::pread(fd, buf, n, offset) : -1;
}

ssize_t FaultFileSystem::Write(int fd, const void* buf, size_t n) {
  return AdmitTransfer(Op::kWrite, fd, &n) ? ::write(fd, buf, n) : -1;
}

void FaultFileSystem::Synced(int fd) {
  if (!track_sync_) return;
  const std::string p = PathOf(fd);
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    for (auto& [path, f] : files_) {
      if (DirOf(path) == p) f.new_entry = false;
    }
    renames_.erase(std::remove_if(renames_.begin(), renames_.end(),
                                  [&](const PendingRename& r) { return r.dir == p; }),
                   renames_.end());
    return;
  }
  auto it = files_.find(p);
  if (it != files_.end()) it->second.synced_size = st.st_size;
}

// fdatasync and fsync: the rule check, the call, and on success what the power-loss model
// counts as synced (the file's size, or a directory's new entries and renames).
int FaultFileSystem::SyncWith(int fd, int (*sync_call)(int)) {
  MutexLock lock(mu_);
  int err = 0;
  if (Match(Op::kSync, PathOf(fd), &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  const int rc = sync_call(fd);
  if (rc == 0) Synced(fd);
  return rc;
}

int FaultFileSystem::Fdatasync(int fd) { return SyncWith(fd, ::fdatasync); }

int FaultFileSystem::Fsync(int fd) { return SyncWith(fd, ::fsync); }

int FaultFileSystem::Ftruncate(int fd, off_t length) {
  MutexLock lock(mu_);
  int err = 0;
  const std::string p = PathOf(fd);
  if (Match(Op::kTruncate, p, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  const int rc = ::ftruncate(fd, length);
  if (rc == 0) {
    auto it = files_.find(p);
    if (it != files_.end()) it->second.synced_size = std::min(it->second.synced_size, length);
  }
  return rc;
}

int FaultFileSystem::Truncate(const char* path, off_t length) {
  MutexLock lock(mu_);
  int err = 0;
  const std::string p = Normalize(path);
  if (Match(Op::kTruncate, p, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  const int rc = ::truncate(path, length);
  if (rc == 0) {
    auto it = files_.find(p);
    if (it != files_.end()) it->second.synced_size = std::min(it->second.synced_size, length);
  }
  return rc;
}

int FaultFileSystem::Rename(const char* from, const char* to) {
  MutexLock lock(mu_);
  int err = 0;
  const std::string f = Normalize(from), t = Normalize(to);
  if (Match(Op::kRename, f, &err) == Verdict::kFail ||
      Match(Op::kRename, t, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  PendingRename pending{DirOf(t), f, t, std::nullopt};
  if (track_sync_) {
    std::string old;
    if (ReadAll(t, &old, 16u << 20)) pending.old_contents = std::move(old);
  }
  const int rc = std::rename(from, to);
  if (rc != 0 || !track_sync_) return rc;
  auto it = files_.find(f);
  FileState moved;
  if (it != files_.end()) {
    moved = it->second;
    files_.erase(it);
  } else {
    struct stat st {};
    if (::stat(to, &st) == 0) moved.synced_size = st.st_size;  // untracked: as it was
  }
  files_[t] = moved;
  renames_.push_back(std::move(pending));
  return rc;
}

int FaultFileSystem::Unlink(const char* path) {
  MutexLock lock(mu_);
  int err = 0;
  const std::string p = Normalize(path);
  if (Match(Op::kUnlink, p, &err) == Verdict::kFail) {
    errno = err;
    return -1;
  }
  const int rc = ::unlink(path);
  if (rc == 0) files_.erase(p);
  return rc;
}

void FaultFileSystem::PowerLossAndExit() {
  mu_.lock();  // never released: nothing more reaches the disk through the seam
  DropUnsyncedLocked();
  std::fflush(stderr);
  ::_exit(137);
}

void FaultFileSystem::DropUnsyncedData() {
  MutexLock lock(mu_);
  DropUnsyncedLocked();
}

void FaultFileSystem::DropUnsyncedLocked() {
  for (auto r = renames_.rbegin(); r != renames_.rend(); ++r) {
    // The rename never reached the disk: the file is back under its old name and the
    // replaced file (if there was one) holds what it held.
    auto it = files_.find(r->to);
    FileState moved = it != files_.end() ? it->second : FileState{};
    if (it != files_.end()) files_.erase(it);
    if (std::rename(r->to.c_str(), r->from.c_str()) == 0) files_[r->from] = moved;
    if (r->old_contents) WriteNew(r->to, *r->old_contents);
  }
  renames_.clear();
  for (const auto& [path, f] : files_) {
    if (f.new_entry) {
      ::unlink(path.c_str());
    } else {
      struct stat st {};
      if (::stat(path.c_str(), &st) == 0 && st.st_size > f.synced_size) {
        if (::truncate(path.c_str(), f.synced_size) != 0) std::perror("DropUnsyncedData");
      }
    }
  }
  files_.clear();
}

}  // namespace ferry::fault
