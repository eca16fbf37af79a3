// `ferry relay`: one long-lived process per interactive shell, so that the prompt hook of
// `ferry init` runs builtins only (a printf to a FIFO) instead of forking a `ferry emit` for
// every command (docs/hooks.md "The relay").
//
// Contract:
// - `ferry relay --source S --session ID --shell-pid PID [--fifo PATH]` makes (or reuses)
//   the FIFO PATH (default: relay-<PID>-<random>.fifo next to ferryd's socket, mode 0600),
//   starts a detached relay (its own session, stdio on /dev/null, no other inherited fd)
//   that holds the FIFO open for reading and writing, prints "<relay pid> <fifo path>\n"
//   and exits 0 (1 with a message when the FIFO cannot be made or opened).
// - The relay reads records from the FIFO and sends each as one event through emit's own
//   code (client/emit.h EmitEvent): the same envelope, ack handling, spool and problem log.
//   It exits when the shell process PID is gone (pidfd; once a second without one), after
//   sending every complete record it can still read; if no session_end record came, it
//   sends one itself ({"shell","session","pid","ended_by":"relay"}). It then removes the FIFO.
//   SIGTERM, SIGINT or SIGHUP: it sends what it has read and exits, leaving the FIFO and
//   what is unread in it to the relay the shell starts next.
// - `ferry relay --stdin --source S --session ID` sends the records read from stdin (to EOF)
//   and exits 0: the snippet's fallback when no relay can be started.
//
// A record is a list of fields "name=value", each ended by a NUL byte, and the record by an
// empty field (a second NUL). Values are raw bytes (a shell string holds no NUL). Fields:
//   kind=K           the event kind (command, session_end, ...); a record without one is
//                    dropped (and noted in the problem log)
//   cwd=DIR          the envelope's cwd; for commands also the payload's "cwd"
//   json=MEMBERS     JSON object members the shell made once (shell, shell_version, session,
//                    pid, ...), put first in the payload as given
//   command=TEXT     the command line; or history=LINE: bash's `history 1` output, from
//                    which the text and hist_id are taken
//   ignore=PATS      colon-separated globs (fnmatch, no flags): a command matching one is
//                    not sent (nor, with or without this field, one that is empty or
//                    starts with white space)
//   status=N pipestatus="N N" bg=1 (the line moved $!: ending in a lone &, and for zsh
//                    &! or &|, it is recorded as "background": true, without either status)
//   start_ns=N end_ns=N (or duration_ns=N, or duration_ms=N: fish) hist_id=N
// A kind=command record becomes {MEMBERS,"command":…,"exit_status":…,"pipestatus":[…],
// "started_at_ns":…,"duration_ns":…,"cwd":…,"hist_id":…} (members without a field are
// left out); any other kind becomes {MEMBERS}.
#pragma once

#include <string>
#include <string_view>

namespace ferry::client {

// `ferry relay ...`; argv holds the arguments after "relay". Returns the exit code.
int RunRelay(int argc, char** argv);

// One record turned into an event (what is sent), for tests and for RunRelay.
struct RelayEvent {
  std::string kind, cwd, payload;
};
// Builds the event of one record (its fields, without the final empty field). False: the
// record is not sent (*why says why when it is a problem, empty when it is simply ignored).
bool BuildRelayEvent(std::string_view source, std::string_view record, RelayEvent* out,
                     std::string* why);

}  // namespace ferry::client
