#include "daemon/base/file_seam.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>

namespace ferry::fs {
namespace {

FileSystem g_posix;
std::atomic<FileSystem*> g_current{&g_posix};

}  // namespace

int FileSystem::Open(const char* path, int flags, mode_t mode) { return ::open(path, flags, mode); }
int FileSystem::Close(int fd) { return ::close(fd); }
ssize_t FileSystem::Read(int fd, void* buf, size_t n) { return ::read(fd, buf, n); }
ssize_t FileSystem::Pread(int fd, void* buf, size_t n, off_t offset) {
  return ::pread(fd, buf, n, offset);
}
ssize_t FileSystem::Write(int fd, const void* buf, size_t n) { return ::write(fd, buf, n); }
int FileSystem::Fdatasync(int fd) { return ::fdatasync(fd); }
int FileSystem::Fsync(int fd) { return ::fsync(fd); }
int FileSystem::Ftruncate(int fd, off_t length) { return ::ftruncate(fd, length); }
int FileSystem::Truncate(const char* path, off_t length) { return ::truncate(path, length); }
int FileSystem::Rename(const char* from, const char* to) { return std::rename(from, to); }
int FileSystem::Unlink(const char* path) { return ::unlink(path); }

FileSystem& Get() { return *g_current.load(std::memory_order_acquire); }

void Install(FileSystem* fs) { g_current.store(fs ? fs : &g_posix, std::memory_order_release); }

}  // namespace ferry::fs
