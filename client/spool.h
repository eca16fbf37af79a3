// The client side of the spool (docs/protocol.md "Spool"): where `ferry emit` leaves an event
// that ferryd did not ack in time, and how `ferry status` counts what waits there.
//
// One file per event, written under a temporary name and renamed when complete:
//   <state_dir>/spool/.<pid>-<rand>.tmp     being written (O_EXCL, 0600)
//   <state_dir>/spool/<ts_ns>-<pid>-<rand>.ndjson   complete: one line, fsynced
// ferryd imports only complete files, and a .tmp file only once its writer is gone.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::client {

// Appends `body` (an EVENT frame body) as one line to a new spool file (0600) and fsyncs it.
// Creates the spool directory (0700) when missing; refuses (false, *error saying why) a spool
// directory that is a symlink, another uid's, or writable by group or others. On success
// sets *path to the file.
bool SpoolEvent(const std::string& state_dir, std::string_view body, std::string* path,
                std::string* error);

struct SpoolCount {
  uint64_t files = 0;
  uint64_t events = 0;  // complete lines
};

// Counts the spool files and their complete lines (what ferryd would import: regular files
// of ours; FIFOs and symlinks are neither opened for long nor followed).
SpoolCount CountSpool(const std::string& state_dir);

}  // namespace ferry::client
