// Small file operations shared by the daemon: the journal (segments, the high-water file),
// its state files (retention.json, sink cursors, dead letters) and spool files. Every call
// goes through the file seam (daemon/base/file_seam.h), so fault tests reach it; EINTR is
// retried here. Any thread; no shared state.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace ferry {

// Reads all of `path` into *out. The error names the call that failed ("open <path>: ...",
// "read <path>: ...").
Status ReadFileStatus(const std::string& path, std::string* out);
// The same as a bool: false when `path` cannot be opened or read, with errno set.
bool ReadWholeFile(const std::string& path, std::string* out);

// Writes all of `data` to `fd` (short writes continued). The error is "<what>: <errno text>";
// a write that returns 0 counts as EIO.
Status WriteAll(int fd, std::string_view data, const std::string& what);

// Replaces `path` with `contents` through `path`.tmp and rename(2), so a crash leaves the old
// or the new file, never a torn one. `durable`: the temp file is fsynced before the rename
// and the directory after it, so the new file also survives a power loss; without it, it
// survives a crash of the process only.
// `dir_fd`, when not -1, is an open descriptor of the directory of `path` (the journal keeps
// one) and is what gets synced.
Status WriteFileAtomically(const std::string& path, std::string_view contents, bool durable,
                           int dir_fd = -1);

// Appends `text` to `path` (created 0600) and fdatasyncs it. If the file does not end in a
// newline (a line torn by a crash mid-append), one is written first, so `text`'s lines stay
// whole.
Status AppendLinesSynced(const std::string& path, std::string_view text);

// fsyncs directory `dir`, so entries created or renamed in it survive a power loss.
Status SyncDir(const std::string& dir);
// The same through `dir_fd`, an open descriptor of `dir` (named in the error).
Status SyncDir(int dir_fd, const std::string& dir);

// The directory part of `path` ("." when it has none).
std::string DirOf(const std::string& path);

// mkdir -p with mode 0700 for each directory it creates.
Status MakeDirs(const std::string& path);

// Wall-clock time (CLOCK_REALTIME) in nanoseconds since the epoch: an event's received time.
int64_t NowNs();

}  // namespace ferry
