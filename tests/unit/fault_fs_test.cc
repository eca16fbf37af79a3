// FaultFileSystem: the rules that fail or shorten seam calls, the power-loss model of
// DropUnsyncedData, and the FERRY_TEST_FAULTS syntax. The fault campaign's unit tests stand on
// these, so each behaviour is pinned here with exact sizes and contents.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cerrno>
#include <string>

#include "daemon/base/fault_injection.h"
#include "daemon/base/file_seam.h"
#include "daemon/base/file_util.h"
#include "tests/unit/test_util.h"

namespace ferry {
namespace {

using test::ReadFile;
using test::TempDir;

// Installs a FaultFileSystem for the test's lifetime.
struct FsGuard {
  explicit FsGuard(fault::FaultFileSystem* f) { fs::Install(f); }
  ~FsGuard() { fs::Install(nullptr); }
  FsGuard(const FsGuard&) = delete;
  FsGuard& operator=(const FsGuard&) = delete;
};

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

void Append(int fd, const std::string& s) {
  REQUIRE(fs::Write(fd, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
}

int OpenDir(const std::string& dir) { return fs::Open(dir.c_str(), O_RDONLY | O_DIRECTORY); }

TEST_CASE("fault fs: a read rule fails after N calls, T times, only on matching paths",
          "[fault_fs]") {
  TempDir dir;
  test::WriteFile(dir.Join("a.seg"), "abcdef");
  test::WriteFile(dir.Join("b.seg"), "uvwxyz");
  fault::FaultFileSystem ffs;
  ffs.AddRule({fault::Op::kRead, EIO, "a.seg", /*after=*/1, /*times=*/2, false});
  FsGuard guard(&ffs);
  const int a = fs::Open(dir.Join("a.seg").c_str(), O_RDONLY);
  const int b = fs::Open(dir.Join("b.seg").c_str(), O_RDONLY);
  char buf[16];
  CHECK(fs::Pread(a, buf, 6, 0) == 6);  // let through
  CHECK(fs::Pread(b, buf, 6, 0) == 6);  // other path
  errno = 0;
  CHECK(fs::Pread(a, buf, 6, 0) == -1);
  CHECK(errno == EIO);
  CHECK(fs::Read(a, buf, 6) == -1);
  CHECK(fs::Pread(a, buf, 6, 0) == 6);  // the rule has gone quiet
  CHECK(ffs.Faults(0) == 2);
  fs::Close(a);
  fs::Close(b);
}

TEST_CASE("fault fs: short reads and writes transfer half", "[fault_fs]") {
  TempDir dir;
  fault::FaultFileSystem ffs;
  ffs.AddRule({fault::Op::kWrite, 0, "f", 0, 1, /*short_io=*/true});
  ffs.AddRule({fault::Op::kRead, 0, "f", 0, 1, /*short_io=*/true});
  FsGuard guard(&ffs);
  const int fd = fs::Open(dir.Join("f").c_str(), O_RDWR | O_CREAT, 0600);
  CHECK(fs::Write(fd, "12345678", 8) == 4);
  CHECK(fs::Write(fd, "5678", 4) == 4);
  char buf[8];
  CHECK(fs::Pread(fd, buf, 8, 0) == 4);
  CHECK(fs::Pread(fd, buf, 8, 0) == 8);
  CHECK(std::string(buf, 8) == "12345678");
  fs::Close(fd);
}

TEST_CASE("fault fs: power loss keeps what was synced and drops the rest", "[fault_fs]") {
  TempDir dir;
  test::WriteFile(dir.Join("old"), "old-");
  fault::FaultFileSystem ffs;
  FsGuard guard(&ffs);

  // An existing file: appended, synced, appended again.
  const int old_fd = fs::Open(dir.Join("old").c_str(), O_WRONLY | O_APPEND);
  Append(old_fd, "synced-");
  REQUIRE(fs::Fdatasync(old_fd) == 0);
  Append(old_fd, "lost");
  fs::Close(old_fd);

  // A new file whose directory was synced after it was created, data synced only in part.
  const int n2 = fs::Open(dir.Join("new-kept").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  Append(n2, "head-");
  REQUIRE(fs::Fdatasync(n2) == 0);
  const int d = OpenDir(dir.path());
  REQUIRE(fs::Fsync(d) == 0);
  fs::Close(d);
  Append(n2, "tail");
  fs::Close(n2);

  // Created and synced after the directory sync, its entry never synced: goes.
  const int n3 = fs::Open(dir.Join("late").c_str(), O_WRONLY | O_CREAT | O_EXCL, 0600);
  Append(n3, "x");
  REQUIRE(fs::Fdatasync(n3) == 0);
  fs::Close(n3);

  ffs.DropUnsyncedData();
  CHECK(ReadFile(dir.Join("old")) == "old-synced-");
  CHECK(ReadFile(dir.Join("new-kept")) == "head-");
  CHECK_FALSE(Exists(dir.Join("late")));
}

TEST_CASE("fault fs: an unsynced rename is undone, a synced one stays", "[fault_fs]") {
  TempDir dir;
  test::WriteFile(dir.Join("cursor"), "v1");
  fault::FaultFileSystem ffs;
  FsGuard guard(&ffs);

  // Not durable: temp written and renamed over, directory never synced.
  REQUIRE(WriteFileAtomically(dir.Join("cursor"), "v2", /*durable=*/false).ok());
  CHECK(ReadFile(dir.Join("cursor")) == "v2");
  ffs.DropUnsyncedData();
  CHECK(ReadFile(dir.Join("cursor")) == "v1");
  CHECK_FALSE(Exists(dir.Join("cursor.tmp")));  // the temp was never made durable either

  // Durable: fdatasync, rename, directory fsync.
  REQUIRE(WriteFileAtomically(dir.Join("cursor"), "v3", /*durable=*/true).ok());
  ffs.DropUnsyncedData();
  CHECK(ReadFile(dir.Join("cursor")) == "v3");
}

TEST_CASE("fault fs: AppendLinesSynced makes a new file's entry durable", "[fault_fs]") {
  TempDir dir;
  fault::FaultFileSystem ffs;
  FsGuard guard(&ffs);
  REQUIRE(AppendLinesSynced(dir.Join("dead.ndjson"), "{\"a\":1}\n").ok());
  ffs.DropUnsyncedData();
  CHECK(ReadFile(dir.Join("dead.ndjson")) == "{\"a\":1}\n");
}

TEST_CASE("fault fs: a failed sync or rename reports the rule's errno", "[fault_fs]") {
  TempDir dir;
  fault::FaultFileSystem ffs;
  ffs.AddRule({fault::Op::kRename, ENOSPC, "cursor", 0, -1, false});
  FsGuard guard(&ffs);
  const Status s = WriteFileAtomically(dir.Join("cursor"), "v", true);
  CHECK(s.message() == "rename " + dir.Join("cursor.tmp") + ": No space left on device");
  ffs.ClearRules();
  ffs.AddRule({fault::Op::kSync, EIO, "", 0, -1, false});
  const Status a = AppendLinesSynced(dir.Join("dl"), "x\n");
  CHECK(a.message() == "append to " + dir.Join("dl") + ": Input/output error");
}

TEST_CASE("fault spec: fail= and short= items parse; malformed ones are refused", "[fault_fs]") {
  CHECK_FALSE(fault::ArmFromSpec("fail=read"));
  CHECK_FALSE(fault::ArmFromSpec("fail=frob:EIO:x"));
  CHECK_FALSE(fault::ArmFromSpec("fail=read:EWHAT:x"));
  CHECK_FALSE(fault::ArmFromSpec("short=sync:x"));
  CHECK_FALSE(fault::ArmFromSpec("fail=read:EIO:x:-1"));
  CHECK_FALSE(fault::ArmFromSpec("fail=read:EIO:x:0:1:9"));
  // A valid spec installs the process-wide fault file system; put POSIX back afterwards.
  REQUIRE(fault::ArmFromSpec("fail=read:EIO:no-such-path-anywhere:0:1,short=write:nowhere"));
  TempDir dir;
  test::WriteFile(dir.Join("f"), "abc");
  const int fd = fs::Open(dir.Join("f").c_str(), O_RDONLY);
  char buf[3];
  CHECK(fs::Read(fd, buf, 3) == 3);
  fs::Close(fd);
  fs::Install(nullptr);
}

}  // namespace
}  // namespace ferry
