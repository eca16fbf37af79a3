// SpoolImporter, the importer thread's file side: listing the spool directory, checking each
// entry (regular file of ours, opened without following links or blocking on a FIFO),
// counting what waits, moving hostile entries aside, and removing imported files. See
// spool_importer.h for the contract.
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <spdlog/spdlog.h>

#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"
#include "daemon/ingest/spool_importer.h"
#include "daemon/ingest/spool_util.h"

namespace ferry {
namespace {

using spool::EndsWith;
using spool::IsTmp;
using spool::ReadSome;

// A .tmp file whose writer still runs is left alone, unless it is this old: a client's
// budget is milliseconds, so by then the pid has been reused or the writer is stuck for good.
constexpr int64_t kStaleTmpSeconds = 600;

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
    MutexLock lk(mu_);
    counted_ = true;
  }
  cv_.NotifyAll();
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
      MutexLock lk(mu_);
      if (stop_ || journal_failed_) return;
    }
    ImportFile(name);
  }
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
    (void)SyncDir(dir_);
  }
}

}  // namespace ferry
