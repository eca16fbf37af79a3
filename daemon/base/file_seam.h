// The file seam: every disk operation of the journal, its readers, the committer, the spool
// importer, sink cursors and dead letters goes through ferry::fs (after leveldb's Env), so
// tests can make any of them fail (EIO/ENOSPC on open, read, write, sync, rename, truncate,
// short reads and writes) and can simulate a power loss (drop everything written after the
// last fdatasync/fsync of a file, and files whose directory entry was never synced).
//
// Contract: each function behaves exactly like the POSIX call of the same name: it returns
// what the call returns and leaves errno set on failure. EINTR is NOT retried here (callers
// keep their loops). The default FileSystem makes the plain system calls; the only cost is
// one relaxed atomic load and an indirect call.
//
// Thread: any thread. Install() is for tests and ferryd's start-up (before threads start).
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cstddef>

namespace ferry::fs {

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  virtual int Open(const char* path, int flags, mode_t mode);
  virtual int Close(int fd);
  virtual ssize_t Read(int fd, void* buf, size_t n);
  virtual ssize_t Pread(int fd, void* buf, size_t n, off_t offset);
  virtual ssize_t Write(int fd, const void* buf, size_t n);
  virtual int Fdatasync(int fd);
  virtual int Fsync(int fd);  // also used to sync directories
  virtual int Ftruncate(int fd, off_t length);
  virtual int Truncate(const char* path, off_t length);
  virtual int Rename(const char* from, const char* to);
  virtual int Unlink(const char* path);
};

// The file system in use (the plain POSIX one unless a test or FERRY_TEST_FAULTS installed
// another). Never null.
FileSystem& Get();
// Installs `fs` (nullptr: back to POSIX). The caller keeps ownership and must keep it alive
// until it is uninstalled.
void Install(FileSystem* fs);

inline int Open(const char* path, int flags, mode_t mode = 0) {
  return Get().Open(path, flags, mode);
}
inline int Close(int fd) { return Get().Close(fd); }
inline ssize_t Read(int fd, void* buf, size_t n) { return Get().Read(fd, buf, n); }
inline ssize_t Pread(int fd, void* buf, size_t n, off_t offset) {
  return Get().Pread(fd, buf, n, offset);
}
inline ssize_t Write(int fd, const void* buf, size_t n) { return Get().Write(fd, buf, n); }
inline int Fdatasync(int fd) { return Get().Fdatasync(fd); }
inline int Fsync(int fd) { return Get().Fsync(fd); }
inline int Ftruncate(int fd, off_t length) { return Get().Ftruncate(fd, length); }
inline int Truncate(const char* path, off_t length) { return Get().Truncate(path, length); }
inline int Rename(const char* from, const char* to) { return Get().Rename(from, to); }
inline int Unlink(const char* path) { return Get().Unlink(path); }

}  // namespace ferry::fs
