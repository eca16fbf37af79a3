// Read commands when ferryd is not running (issue 12 "Reading what was recorded").
//
// `ferry query`, `sessions`, `tail` (without -f) and `deadletter list` must work when ferryd
// is down. The client stays lean (proto + libstdc++, no SQLite): instead of reading ferry.db
// itself it starts a read-only ferryd for this one call (`ferryd --serve-offline`, see
// docs/protocol.md "Offline reads"), hands it one end of a socketpair and speaks the same
// protocol to it as to the running daemon. That ferryd opens ferry.db and the journal
// read-only, writes nothing, takes no lock, answers one connection and exits.
//
// Thread: the client is single-threaded; call from main.
#pragma once

#include <string>

#include "client/args.h"
#include "client/conn.h"

namespace ferry::client {

enum class Reach {
  kDaemon,        // connected to the running ferryd
  kOffline,       // ferryd is not running; connected to a read-only ferryd started for this call
  kNotAnswering,  // something holds the socket or the state lock but does not answer in time
  kFailed,        // neither: *error says why (no ferryd binary found, state dir missing, ...)
};

// Connects *conn to the ferryd on `socket` before `deadline`. When nothing listens there
// (ENOENT, ECONNREFUSED) and `allow_offline`, starts the read-only ferryd instead.
// *error is set for kNotAnswering and kFailed.
//
// In detail:
//  - connected: kDaemon.
//  - the listen queue stayed full until the deadline (EAGAIN): kNotAnswering, *error is
//    DescribeUnanswered().
//  - ENOENT/ECONNREFUSED while a process holds <state>/ferryd.lock (a ferryd starting, or one
//    whose socket is elsewhere): connecting is retried every 20 ms until the deadline; if the
//    lock is released meanwhile, as without a holder below; at the deadline kNotAnswering.
//  - ENOENT/ECONNREFUSED, no holder, !allow_offline: kFailed, *error "ferryd is not running
//    (no answer on SOCKET: <errno text>)".
//  - ENOENT/ECONNREFUSED, no holder, allow_offline: the state directory must exist (else
//    kFailed "nothing recorded yet: DIR does not exist"); ferryd is looked for in
//    $FERRY_FERRYD (used as is when set), beside the running ferry, in FERRY_INSTALL_BINDIR,
//    then on PATH (else kFailed naming where it looked); it runs as
//    `ferryd --serve-offline --offline-fd 3 --state-dir DIR [--config FILE]` with stdin
//    /dev/null, stdout on our stderr, and dies with us (PR_SET_PDEATHSIG). kOffline; *conn
//    owns the child and reaps it (Connection::Adopt). A ferryd that cannot be executed:
//    kFailed "cannot run PATH: <errno text>".
//  - any other connect error: kFailed "ferryd is not running (no answer on SOCKET: <Connect's
//    message>)". Every *error is a whole sentence, printed as it is.
Reach ConnectOrOffline(Connection* conn, const GlobalOptions& global, const std::string& socket,
                       Clock::time_point deadline, bool allow_offline, std::string* error);

// For a ferryd that accepted the connection (or holds the state lock) but did not answer
// before the deadline, e.g. stopped with SIGSTOP. The pid comes from <state>/ferryd.lock when
// it is held (tested with flock LOCK_SH|LOCK_NB, released at once; the file is opened
// read-only and never created); its state from /proc/<pid>/stat:
//   "ferryd (pid 1234) is not answering on SOCKET: stopped (try: kill -CONT 1234)"
//   "ferryd (pid 1234) is not answering on SOCKET: busy (running, but no answer in time)"
// and without a holder, or with no pid in the file or one that names no process:
// "ferryd is not answering on SOCKET".
// Read commands print it and exit 3.
std::string DescribeUnanswered(const GlobalOptions& global, const std::string& socket);

// The same for the state directory `state_dir` (DescribeUnanswered resolves it from
// `global`). In ferry_client_lib, so tests/unit can call it.
std::string DescribeUnansweredIn(const std::string& state_dir, const std::string& socket);

// Who holds <state_dir>/ferryd.lock: -1 when nobody does (or the file is missing or cannot
// be opened), else the pid the holder wrote in it (0 when unreadable).
long StateLockHolder(const std::string& state_dir);

// The state letter of /proc/<pid>/stat ('R', 'S', 'T' for stopped, ...), or 0 when it cannot
// be read (no such process).
char ProcessState(long pid);

}  // namespace ferry::client
