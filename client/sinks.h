// `ferry flush` and `ferry deadletter`: the command-line side of the upstream sinks
// (docs/sinks.md). flush and the dead-letter commands ask ferryd (FLUSH_REQ, DEADLETTER_REQ
// with op list, replay or purge): while it runs, only its sink threads touch the files. When
// ferryd is not running, `deadletter list` and `purge` read and remove
// <state_dir>/deadletter/*.ndjson themselves (names from proto/paths.h, shared with ferryd).
// Flags: client/args.h (ParseFlushArgs, ParseDeadletterArgs). Code: flush.cc, deadletter.cc,
// and the helpers both share in sinks.cc (sink_reply.h). Called from main()'s thread only.
#pragma once

namespace ferry::client {

// Exit 0 done, 1 a chosen sink reports an error (or ferryd refused), 2 timed out (--wait),
// 3 ferryd not running.
int RunFlush(int argc, char** argv);
// Exit 0 ok, 1 failed, 2 usage, 3 ferryd not running (replay only).
int RunDeadletter(int argc, char** argv);

}  // namespace ferry::client
