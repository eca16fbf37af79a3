#include "daemon/app/state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include <spdlog/spdlog.h>

#include "daemon/base/file_util.h"
#include "daemon/ingest/spool_importer.h"  // CheckPrivateDir

namespace ferry {

void PrepareStateDir(const std::string& dir) {
  if (Status made = MakeDirs(dir); !made.ok()) throw std::runtime_error(made.message());
  if (Status ok = CheckPrivateDir(dir, "state directory", false); !ok.ok()) {
    throw std::runtime_error(ok.message());
  }
  // spool/ is where clients drop events: it must be a real directory of ours (checked here,
  // before any thread starts, so a refusal exits at once; SpoolImporter::Start checks again).
  if (const std::string spool = dir + "/spool";
      ::mkdir(spool.c_str(), 0700) == 0 || errno == EEXIST) {
    if (Status ok = CheckPrivateDir(spool, "spool directory", true); !ok.ok()) {
      throw std::runtime_error(ok.message());
    }
  }
  // Files made before ferryd set its umask (an older ferryd run by hand with umask 022)
  // are tightened: ferry.db and its -wal/-shm hold every payload.
  for (const char* name : {"ferry.db", "ferry.db-wal", "ferry.db-shm", "ferryd.lock"}) {
    const std::string path = dir + "/" + name;
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 077) != 0) {
      if (::chmod(path.c_str(), 0600) == 0) {
        spdlog::warn("{} was mode {:o}; set it to 0600", path, st.st_mode & 07777);
      } else {
        spdlog::warn("{} is mode {:o} and chmod 0600 failed: {}", path, st.st_mode & 07777,
                     std::strerror(errno));
      }
    }
  }
}

StateDirLock::StateDirLock(const std::string& dir) {
  const std::string path = dir + "/ferryd.lock";
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd_ < 0) throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  // `ferry` probes the lock with a shared flock held for microseconds (client/offline.h,
  // StateLockHolder): a start that meets such a probe retries for a while instead of taking it
  // for a second ferryd. A real holder keeps the lock for the whole wait.
  int rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  for (int tries = 0; rc != 0 && errno == EWOULDBLOCK && tries < 100; ++tries) {
    ::usleep(5000);  // 100 x 5 ms: half a second, once, at start
    rc = ::flock(fd_, LOCK_EX | LOCK_NB);
  }
  if (rc != 0) {
    const int err = errno;
    char buf[32] = {};
    const ssize_t n = ::pread(fd_, buf, sizeof buf - 1, 0);
    const long holder = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
    ::close(fd_);
    fd_ = -1;
    if (err != EWOULDBLOCK) {
      throw std::runtime_error("cannot lock " + path + ": " + std::strerror(err));
    }
    throw std::runtime_error(
        "another ferryd" + (holder > 0 ? " (pid " + std::to_string(holder) + ")" : "") +
        " is using the state directory " + dir + "; not starting a second one");
  }
  const std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd_, 0) != 0 || ::pwrite(fd_, pid.data(), pid.size(), 0) < 0) {
    spdlog::warn("cannot record our pid in {}: {}", path, std::strerror(errno));
  }
}

StateDirLock::~StateDirLock() {
  if (fd_ >= 0) ::close(fd_);
}

}  // namespace ferry
