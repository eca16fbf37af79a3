// The state directory: made private before anything else touches it, then locked for the
// life of the daemon.
//
// Thread: the io thread, at start, before any other thread runs.
#pragma once

#include <string>

namespace ferry {

// Creates `dir` (0700) if needed and refuses it (throws std::runtime_error) when another user
// owns it or can write to it (they could swap spool/, journal/ or ferry.db). Also makes
// spool/ a private directory of ours, and tightens ferry.db, its -wal/-shm and ferryd.lock to
// 0600 when an older ferryd run with umask 022 made them readable (logged).
void PrepareStateDir(const std::string& dir);

// Holds an exclusive flock on <state_dir>/ferryd.lock for the life of the daemon, so two
// ferryds never append to one journal (each would hand out the same seqs). The kernel drops
// the lock with the process, even on SIGKILL, so a stale lock file never blocks a restart.
// The file holds the holder's pid (best effort), which the refusal names.
class StateDirLock {
 public:
  // Throws std::runtime_error when the file cannot be opened or another process holds it.
  explicit StateDirLock(const std::string& dir);
  ~StateDirLock();
  StateDirLock(const StateDirLock&) = delete;
  StateDirLock& operator=(const StateDirLock&) = delete;

 private:
  int fd_ = -1;
};

}  // namespace ferry
