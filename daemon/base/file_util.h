// Small whole-file operations shared by the daemon's state files (retention.json, sink
// cursors, dead letters, spool files). Any thread; no shared state.
#pragma once

#include <string>
#include <string_view>

#include "daemon/base/status.h"

namespace ferry {

// Reads all of `path` into *out (EINTR-safe). False when it cannot be opened or read.
bool ReadWholeFile(const std::string& path, std::string* out);

// Replaces `path` with `contents` through `path`.tmp and rename(2), so a crash leaves the old
// or the new file, never a torn one. `durable`: the temp file is fsynced before the rename
// and the directory after it, so the new file also survives a power loss; without it, it
// survives a crash of the process only.
Status WriteFileAtomically(const std::string& path, std::string_view contents, bool durable);

// Appends `text` to `path` (created 0600) and fdatasyncs it. If the file does not end in a
// newline (a line torn by a crash mid-append), one is written first, so `text`'s lines stay
// whole.
Status AppendLinesSynced(const std::string& path, std::string_view text);

// fsyncs directory `dir`, so entries created or renamed in it survive a power loss.
Status SyncDir(const std::string& dir);

// The directory part of `path` ("." when it has none).
std::string DirOf(const std::string& path);

// mkdir -p with mode 0700 for each directory it creates.
Status MakeDirs(const std::string& path);

}  // namespace ferry
