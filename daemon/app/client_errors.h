// ClientErrorLog: what `ferry emit` noted about its own problems (client/client_errors.h writes
// <state>/client-errors.log and, once that reached 64 KiB, client-errors.log.1), summed up for
// status: how many lines the two files hold and the newest one.
//
// Reads the files only when their size, mtime or inode changed since the last call (a stat
// each otherwise), opening them O_NOFOLLOW|O_NONBLOCK and reading only regular files of
// ferryd's uid, at most 256 KiB each: a FIFO or a huge file planted there cannot stall the io
// thread. Thread: the io thread only (status).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>

namespace ferry {

class ClientErrorLog {
 public:
  explicit ClientErrorLog(std::string state_dir);

  struct Summary {
    uint64_t count = 0;     // lines in client-errors.log and client-errors.log.1
    std::string last;       // the newest line, without its newline; empty when none
    std::string last_time;  // its time ("2026-12-04T10:32:51.596Z"), the line's first word
    std::string last_what;  // the rest: "zsh[1234]: emit: unknown argument ..."
  };
  const Summary& Read();
  const std::string& path() const { return path_; }

 private:
  struct FileState {
    dev_t dev = 0;
    ino_t ino = 0;
    off_t size = -1;
    int64_t mtime_ns = 0;
    uint64_t lines = 0;
    std::string last;
  };
  // Re-reads `file` into *state when it changed; a missing file is zero lines.
  static void Refresh(const std::string& file, FileState* state);

  const std::string path_;
  FileState current_, previous_;
  Summary summary_;
};

}  // namespace ferry
