// The session rollup: what one batch adds to each session's row in the sessions table
// (first/last ts, event count, per-kind counts, failures, end), merged with the stored row
// in the batch's transaction.
//
// Threads: the store thread (it owns the statements).
#pragma once

#include <climits>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "daemon/store/raw_statement.h"
#include "proto/event.h"

namespace ferry::store {

// Ends a session: the hosts' own end events. (Claude Code and Gemini send SessionEnd; our
// shell snippets send "exit".)
bool IsEndKind(std::string_view kind);

// A failure where the source says so: a *Failure event (Claude Code's PostToolUseFailure),
// or a non-zero exit status in the payload (shell commands, shell tools of agents).
bool IsFailureKind(std::string_view kind);
bool IsFailurePayload(const rapidjson::Value* payload);

using KindCounts = std::map<std::string, int64_t, std::less<>>;

// One session's share of a batch.
struct SessionDelta {
  std::string source, session;
  int64_t first_ts = INT64_MAX;
  int64_t last_ts = INT64_MIN;
  int64_t end_ts = INT64_MIN;  // latest end event, if any
  int64_t events = 0;
  int64_t failures = 0;
  KindCounts kinds;
};

// Reads the session's row with `get` (SELECT first_ts, last_ts, events, kinds, failures,
// ended, end_reason WHERE source = ? AND session = ?), merges `d` into it and writes it with
// `put` (INSERT OR REPLACE of the nine columns). Throws SQLite::Exception. `opened`, when
// given, gets +1 when the session was not open before (new, or ended) and is now, -1 when it
// was open and has ended, else 0.
void MergeSession(RawStatement& get, RawStatement& put, SessionDelta& d, int64_t* opened = nullptr);

}  // namespace ferry::store
