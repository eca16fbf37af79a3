#include "daemon/base/file_util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "daemon/base/file_seam.h"

namespace ferry {

Status WriteAll(int fd, std::string_view data, const std::string& what) {
  while (!data.empty()) {
    const ssize_t n = fs::Write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) errno = EIO;
    if (n <= 0) return Status::FromErrno(what, errno);
    data.remove_prefix(static_cast<size_t>(n));
  }
  return Status::Ok();
}

int64_t NowNs() {
  struct timespec ts {};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

Status SyncDir(const std::string& dir) {
  const int dfd = fs::Open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return Status::FromErrno("open directory " + dir, errno);
  const int rc = fs::Fsync(dfd);
  const int err = errno;
  fs::Close(dfd);
  if (rc != 0) return Status::FromErrno("fsync directory " + dir, err);
  return Status::Ok();
}

Status SyncDir(int dir_fd, const std::string& dir) {
  if (fs::Fsync(dir_fd) != 0) return Status::FromErrno("fsync directory " + dir, errno);
  return Status::Ok();
}

Status ReadFileStatus(const std::string& path, std::string* out) {
  const int fd = fs::Open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  out->clear();
  char buf[65536];
  ssize_t n;
  while ((n = fs::Read(fd, buf, sizeof buf)) != 0) {
    if (n < 0) {
      if (errno == EINTR) continue;
      const int err = errno;
      fs::Close(fd);
      errno = err;
      return Status::FromErrno("read " + path, err);
    }
    out->append(buf, static_cast<size_t>(n));
  }
  fs::Close(fd);
  return Status::Ok();
}

bool ReadWholeFile(const std::string& path, std::string* out) {
  return ReadFileStatus(path, out).ok();  // errno is still the failed call's
}

Status WriteFileAtomically(const std::string& path, std::string_view contents, bool durable,
                           int dir_fd) {
  const std::string tmp = path + ".tmp";
  const int fd = fs::Open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("create " + tmp, errno);
  if (Status s = WriteAll(fd, contents, "write " + tmp); !s.ok()) {
    fs::Close(fd);
    return s;
  }
  if (durable && fs::Fdatasync(fd) != 0) {
    const int err = errno;
    fs::Close(fd);
    return Status::FromErrno("fdatasync " + tmp, err);
  }
  fs::Close(fd);
  if (fs::Rename(tmp.c_str(), path.c_str()) != 0) return Status::FromErrno("rename " + tmp, errno);
  // Without the directory sync the rename itself may not survive a power loss, and a caller
  // that asked for durability (a sink cursor) would act on a file that can come back old.
  if (durable) return dir_fd >= 0 ? SyncDir(dir_fd, DirOf(path)) : SyncDir(DirOf(path));
  return Status::Ok();
}

Status AppendLinesSynced(const std::string& path, std::string_view text) {
  struct stat before {};
  const bool existed = ::stat(path.c_str(), &before) == 0;
  const int fd = fs::Open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  struct stat st {};
  char last = '\n';
  bool ok = true;
  if (::fstat(fd, &st) == 0 && st.st_size > 0 && fs::Pread(fd, &last, 1, st.st_size - 1) == 1 &&
      last != '\n') {
    ok = WriteAll(fd, "\n", path).ok();
  }
  ok = ok && WriteAll(fd, text, path).ok();
  ok = ok && fs::Fdatasync(fd) == 0;
  const int err = errno;
  fs::Close(fd);
  if (!ok) return Status::FromErrno("append to " + path, err);
  // A new file's directory entry must be durable too, or a power loss takes the whole file.
  if (!existed) return SyncDir(DirOf(path));
  return Status::Ok();
}

Status MakeDirs(const std::string& path) {
  size_t pos = 0;
  while (pos != std::string::npos) {
    pos = path.find('/', pos + 1);
    const std::string partial = path.substr(0, pos);
    if (partial.empty()) continue;
    if (::mkdir(partial.c_str(), 0700) != 0 && errno != EEXIST) {
      return Status::FromErrno("cannot create " + partial, errno);
    }
  }
  return Status::Ok();
}

}  // namespace ferry
