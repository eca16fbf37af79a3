// Test-only fault injection (STYLE.md §7, "fail-the-n-th-operation"), in two layers:
//
// 1. Point faults for the journal's write and the committer's fdatasync (Arm/Check): the
//    oldest mechanism, kept for the tests that use it. Unset, every Check is one relaxed
//    atomic load.
// 2. FaultFileSystem, a ferry::fs::FileSystem (daemon/base/file_seam.h) after leveldb's
//    FaultInjectionTestEnv: rules fail or shorten any seam call on paths that contain a
//    substring, and DropUnsyncedData() simulates a power loss.
//
// ferryd arms both from FERRY_TEST_FAULTS at start (ArmFromSpec), comma-separated items:
//   write_fail_after=N            the journal's (N+1)-th write writes half, then ENOSPC
//   fsync_fail_after=N            the committer's (N+1)-th fdatasync fails with EIO
//   fail=OP:ERRNO:SUBSTR[:AFTER[:TIMES]]   seam call OP on a path containing SUBSTR fails
//                                 with ERRNO after AFTER matching calls succeed, TIMES times
//                                 (default: after 0, forever = -1)
//   short=OP:SUBSTR[:AFTER[:TIMES]]         read/write transfers half (at least 1 byte)
//   power_loss=SIGNAL             (SIGUSR1 or SIGUSR2) on that signal, ferryd simulates a power
//                                 loss: every seam call stops, the disk is put back to what
//                                 was synced (DropUnsyncedData) and the process _exits(137).
//                                 Writes that bypass the seam (SQLite's) are not cut.
// OP: open, close, read (read and pread), write, sync (fdatasync and fsync), truncate
// (ftruncate and truncate), rename (matched on either path), unlink. ERRNO: EIO, ENOSPC,
// EACCES, EPERM, EROFS, EMFILE, ENFILE, EDQUOT, EAGAIN, EINTR, ENOENT, or a number.
// SUBSTR may be empty ("fail=sync:EIO:") to match every path.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/base/file_seam.h"
#include "daemon/base/thread_annotations.h"

namespace ferry::fault {

enum class Point { kWrite, kSync };

// Fails the operation at `point` once `after` more calls have succeeded (-1: never).
void Arm(Point point, int64_t after, int error_number);
void DisarmAll();
// Returns 0 to proceed, or the errno the operation must fail with.
int Check(Point point);
// Parses the FERRY_TEST_FAULTS syntax above; arms the points and, for fail=/short= items,
// installs a process-wide FaultFileSystem with those rules. False on a malformed spec
// (nothing is armed then).
bool ArmFromSpec(std::string_view spec);

enum class Op { kOpen, kClose, kRead, kWrite, kSync, kTruncate, kRename, kUnlink };

struct Rule {
  Op op = Op::kRead;
  int error_number = 0;   // errno to fail with (0 with short_io: never fails)
  std::string path;       // substring of the path; empty matches every path
  int64_t after = 0;      // matching calls that succeed before the first fault
  int64_t times = -1;     // faults before the rule goes quiet; -1 forever
  bool short_io = false;  // read/write: transfer half (at least one byte) instead
};

// A FileSystem that forwards to POSIX, applying rules and (with track_sync) remembering what
// each file held at its last sync, so DropUnsyncedData() can put the disk back into the
// state a power loss would leave. Any thread; every call takes one mutex.
//
// Power-loss model (what DropUnsyncedData does, in this order):
//  - renames not followed by an fsync of their directory are undone: the file goes back to
//    its old name and the replaced file (if any, up to 16 MiB) gets its old contents back;
//  - files created (O_CREAT of a new name) whose directory was not fsynced since are deleted;
//  - every other file touched through the seam is cut to its size at its last fdatasync or
//    fsync (files opened but never synced keep the size they had when first opened);
// Not modelled: unsynced unlinks (a deleted file stays deleted), data overwritten in place
// (ferry only appends), metadata-only changes. Afterwards the tracked state starts afresh.
class FaultFileSystem : public fs::FileSystem {
 public:
  explicit FaultFileSystem(bool track_sync = true) : track_sync_(track_sync) {}

  void AddRule(Rule rule);
  void ClearRules();
  // How many calls the rule at `index` (in AddRule order) has failed or shortened.
  int64_t Faults(size_t index) const;
  int64_t TotalFaults() const;

  void DropUnsyncedData();
  // Power loss of a running process: blocks every other seam call for good, drops the
  // unsynced data and ends the process with _exit(137). For FERRY_TEST_FAULTS power_loss.
  [[noreturn]] void PowerLossAndExit();

  int Open(const char* path, int flags, mode_t mode) override;
  int Close(int fd) override;
  ssize_t Read(int fd, void* buf, size_t n) override;
  ssize_t Pread(int fd, void* buf, size_t n, off_t offset) override;
  ssize_t Write(int fd, const void* buf, size_t n) override;
  int Fdatasync(int fd) override;
  int Fsync(int fd) override;
  int Ftruncate(int fd, off_t length) override;
  int Truncate(const char* path, off_t length) override;
  int Rename(const char* from, const char* to) override;
  int Unlink(const char* path) override;

 private:
  struct RuleState {
    Rule rule;
    int64_t seen = 0;
    int64_t faults = 0;
  };
  struct FileState {
    off_t synced_size = 0;
    bool new_entry = false;  // created, and its directory not fsynced since
  };
  struct PendingRename {
    std::string dir, from, to;
    std::optional<std::string> old_contents;  // of `to` before the rename
  };
  enum class Verdict { kProceed, kFail, kShort };

  Verdict Match(Op op, const std::string& path, int* err) FERRY_REQUIRES(mu_);
  std::string PathOf(int fd) const FERRY_REQUIRES(mu_);
  void Synced(int fd) FERRY_REQUIRES(mu_);
  bool AdmitTransfer(Op op, int fd, size_t* n) FERRY_EXCLUDES(mu_);
  int SyncWith(int fd, int (*sync_call)(int)) FERRY_EXCLUDES(mu_);
  void DropUnsyncedLocked() FERRY_REQUIRES(mu_);

  const bool track_sync_;
  // Lock order: a leaf lock; every seam call of every thread takes it (tests only).
  mutable Mutex mu_;
  std::vector<RuleState> rules_ FERRY_GUARDED_BY(mu_);
  std::map<int, std::string> fd_paths_ FERRY_GUARDED_BY(mu_);
  std::map<std::string, FileState> files_ FERRY_GUARDED_BY(mu_);
  std::vector<PendingRename> renames_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry::fault
