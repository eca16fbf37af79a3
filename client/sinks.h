// `ferry flush` and `ferry deadletter`: the command-line side of the upstream sinks
// (docs/sinks.md). flush, replay and purge ask ferryd (FLUSH_REQ, DEADLETTER_REQ);
// `deadletter list` reads <state_dir>/deadletter/*.ndjson itself, so it works without ferryd,
// and so does `deadletter purge` when ferryd is not running.
#pragma once

namespace ferry::client {

// Exit 0 done, 1 a chosen sink reports an error (or ferryd refused), 2 timed out (--wait),
// 3 ferryd not running.
int RunFlush(int argc, char** argv);
// Exit 0 ok, 1 failed, 2 usage, 3 ferryd not running (replay only).
int RunDeadletter(int argc, char** argv);

}  // namespace ferry::client
