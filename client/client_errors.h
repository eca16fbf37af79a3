// The client's problem log: where `ferry emit` notes what went wrong when it must stay silent
// (docs/operations.md "Spool": a hook's stderr can reach the user or the model).
//
//   <state_dir>/client-errors.log     one line per problem: "<UTC time> <parent>[<ppid>]: <what>"
//   <state_dir>/client-errors.log.1   the previous file, once client-errors.log reached 64 KiB
//
// Written only on emit's error paths (bad flags, a refusal by ferryd, an event that could not be
// spooled), never on the path that delivers or spools an event. ferryd reads both files for
// `ferry status` ("client problems"; daemon/app/client_errors.h, which spells the same names).
// Best effort: a problem that cannot be recorded is dropped. Thread: the client's only one.
#pragma once

#include <string>

#include "client/args.h"

namespace ferry::client {

inline constexpr const char* kClientErrorLogName = "client-errors.log";
inline constexpr long kClientErrorLogMaxBytes = 64 * 1024;

// The global options named anywhere in argv (even after an argument that failed to parse), so
// a problem is recorded in the state directory the hook asked for.
GlobalOptions ScanGlobalOptions(int argc, char** argv);

// Appends one line about `what` to <state_dir>/client-errors.log (0600; the directory is made
// 0700 when missing), rotating it first when it has reached kClientErrorLogMaxBytes. Control
// characters become spaces and `what` is cut to 400 bytes. Writes nothing unless state_dir is
// a directory of this user that group and others cannot write to; never follows a symlink,
// never writes to another user's file or to anything but a regular file.
void RecordClientProblem(const std::string& state_dir, const std::string& what);

}  // namespace ferry::client
