#include "client/spool.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace ferry::client {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

// mkdir -p with mode 0700 for every directory it creates.
bool MakeDirs(const std::string& path, std::string* error) {
  for (size_t pos = 1; pos != std::string::npos;) {
    pos = path.find('/', pos + 1);
    const std::string partial = path.substr(0, pos);
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      *error = Errno("create " + partial);
      return false;
    }
  }
  return true;
}

std::string RandomHex() {
  unsigned char bytes[6] = {};
  if (getrandom(bytes, sizeof bytes, GRND_NONBLOCK) != static_cast<ssize_t>(sizeof bytes)) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    std::memcpy(bytes, &ts.tv_nsec,
                sizeof bytes < sizeof ts.tv_nsec ? sizeof bytes : sizeof ts.tv_nsec);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 0xf];
  }
  return s;
}

std::string Mode(mode_t mode) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(mode & 07777));
  return buf;
}

// Opens the spool directory (creating it 0700 when missing) and checks it the way ferryd
// does: a real directory (not a symlink), ours, not writable by group or others. Events
// spooled anywhere else could be read or forged by another user. Returns the directory's fd.
int OpenSpoolDir(const std::string& dir, std::string* error) {
  const int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
  int dfd = ::open(dir.c_str(), flags);
  if (dfd < 0 && errno == ENOENT) {
    if (!MakeDirs(dir, error)) return -1;
    dfd = ::open(dir.c_str(), flags);
  }
  if (dfd < 0) {
    const int err = errno;
    struct stat lst {};
    if ((err == ELOOP || err == ENOTDIR) && ::lstat(dir.c_str(), &lst) == 0 &&
        S_ISLNK(lst.st_mode)) {
      *error = "spool directory " + dir +
               " is a symbolic link; ferry keeps it only as a real directory of its own: "
               "remove the link (rm " +
               dir + ")";
    } else {
      errno = err;
      *error = Errno("open spool directory " + dir);
    }
    return -1;
  }
  struct stat st {};
  if (::fstat(dfd, &st) != 0) {
    *error = Errno("stat spool directory " + dir);
  } else if (st.st_uid != ::geteuid()) {
    *error = "spool directory " + dir + " (mode " + Mode(st.st_mode) + ") belongs to uid " +
             std::to_string(st.st_uid) + ", not to uid " + std::to_string(::geteuid());
  } else if ((st.st_mode & 022) != 0) {
    *error = "spool directory " + dir + " is mode " + Mode(st.st_mode) +
             ": other users can write to it; fix it with `chmod 700 " + dir + "`";
  } else {
    return dfd;
  }
  ::close(dfd);
  return -1;
}

bool WriteAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

bool SpoolEvent(const std::string& state_dir, std::string_view body, std::string* path,
                std::string* error) {
  const std::string dir = state_dir + "/spool";
  // A raw newline in a valid JSON text can only be whitespace between tokens (inside strings
  // it is escaped), so replacing it keeps the value and makes the event exactly one line.
  std::string line(body);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  line += '\n';

  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  const std::string id = std::to_string(::getpid()) + "-" + RandomHex();
  const std::string tmp_name = "." + id + ".tmp";
  const std::string tmp = dir + "/" + tmp_name;
  const int dfd = OpenSpoolDir(dir, error);
  if (dfd < 0) return false;
  // 0600 whatever the umask; created inside the directory just checked (openat), not
  // wherever the path leads by now.
  const int fd = ::openat(dfd, tmp_name.c_str(),
                          O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    *error = Errno("create " + tmp);
    ::close(dfd);
    return false;
  }
  // One write() for the whole line; a file per writer, so nothing can interleave with it.
  const bool ok = WriteAll(fd, line) && ::fdatasync(fd) == 0;
  if (!ok) *error = Errno("write " + tmp);
  ::close(fd);
  if (!ok) {
    ::unlinkat(dfd, tmp_name.c_str(), 0);
    ::close(dfd);
    return false;
  }
  char stamp[32];
  std::snprintf(
      stamp, sizeof stamp, "%019lld",
      static_cast<long long>(ts.tv_sec) * 1000000000LL + static_cast<long long>(ts.tv_nsec));
  const std::string final_name = std::string(stamp) + "-" + id + ".ndjson";
  *path = dir + "/" + final_name;
  if (::renameat(dfd, tmp_name.c_str(), dfd, final_name.c_str()) != 0) {
    // The data is on disk under the .tmp name; ferryd imports it once we are gone.
    *path = tmp;
  }
  ::close(dfd);
  // No fsync of the directory (it doubles the cost at the tail): the file's fdatasync has
  // committed its creation under the .tmp name (ext4 commits the running transaction, which
  // holds it), so a power cut before the rename is on disk leaves the .tmp file, and ferryd
  // imports a .tmp file once its writer is gone. docs/operations.md "Spool".
  return true;
}

SpoolCount CountSpool(const std::string& state_dir) {
  SpoolCount count;
  const std::string dir = state_dir + "/spool";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return count;
  while (struct dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    const bool done = name.size() > 7 && name.substr(name.size() - 7) == ".ndjson";
    const bool tmp =
        name.size() > 4 && name.front() == '.' && name.substr(name.size() - 4) == ".tmp";
    if (!done && !tmp) continue;
    // As ferryd: never block on a FIFO, never follow a symlink, count only regular files of
    // ours (ferryd moves anything else aside without reading it).
    const int fd = ::open((dir + "/" + std::string(name)).c_str(),
                          O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) continue;
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) {
      ::close(fd);
      continue;
    }
    ++count.files;
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) {
      for (ssize_t i = 0; i < n; ++i) count.events += buf[i] == '\n';
    }
    ::close(fd);
  }
  ::closedir(d);
  return count;
}

}  // namespace ferry::client
