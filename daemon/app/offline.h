// `ferryd --serve-offline`: the read-only ferryd that `ferry` starts for one call when no
// ferryd runs (client/offline.h; docs/protocol.md "Offline reads").
//
// It serves one connection, the socket `fd` the client handed it, with the normal protocol:
//  - QUERY_REQ: StoreQuery over ferry.db, opened so that nothing in the state directory is
//    written or created: `immutable=1` when ferry.db has no -wal (ferryd stopped cleanly;
//    ferry.db is then checked unchanged after each query, else the answer is an error
//    "ferry.db changed while it was read"), or `mode=ro&readonly_shm=1` when the -wal and -shm
//    are there (ferryd was killed; SQLite reads the log without writing the index). A -wal
//    without its -shm is refused with a message (it cannot be read without creating a file).
//    Sorts and materialized subqueries that outgrow SQLite's cache stay in memory
//    (QueryLimits::temp_in_memory): a temp file would be a file created.
//    When the journal holds records newer than ferry.db's cursor, one note on stderr says how
//    many (the client's stderr: the note reaches the user).
//  - TAIL_REQ without follow: TailServer itself, over a JournalProgress set to the journal's
//    last record, so the frames are exactly those the running ferryd sends.
//  - DEADLETTER_REQ op "list": each configured sink's DeadLetterFiles::List, as the sinks do.
//  - TRANSCRIPT_REQ: archive::AnswerTranscriptRequest over <state>/archive (read-only; a torn
//    tail is skipped, not cut).
//  - HELLO: HELLO with "offline":true.
//  - anything else (events, STATUS_REQ, FLUSH_REQ, replay, purge, tail -f): ERROR
//    unexpected_type (not fatal) "ferryd is not running; ... start it with ...".
// A state directory another user owns or can write to is refused (fatal ERROR), as ferryd
// refuses it, but not tightened; so is a ferry.db-journal (an interrupted write). It takes no
// lock (a ferryd starting meanwhile starts) and never writes (the SQLite system calls that
// could are replaced in this process). It ends when the client closes its end, after a tail,
// or after kOfflineIdleTimeout without a request, and logs nothing: its stderr is the client's.
//
// Thread: main, alone (a tail runs on TailServer's worker thread while main waits for it).
#pragma once

#include <chrono>
#include <string>

namespace ferry {

struct OfflineOptions {
  int fd = -1;              // --offline-fd: a connected stream socket
  std::string state_dir;    // --state-dir; empty: $FERRY_STATE_DIR or the default
  std::string config_path;  // --config; empty: $FERRY_CONFIG or the default
};

inline constexpr std::chrono::seconds kOfflineIdleTimeout{60};

// Serves the connection and returns ferryd's exit status: 0 when the client closed it, 1 on
// a failure to talk to it, 2 when `fd` is not a socket.
int ServeOffline(const OfflineOptions& options);

}  // namespace ferry
