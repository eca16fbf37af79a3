// SourceStats: per source (each agent and shell) the figures `ferry status` shows in
// `sources` (docs/protocol.md "Status object"): events stored today (local day, by the
// event's ts), the newest event's time, open sessions (the sessions rollup: ended IS NULL)
// and the last error (the newest event today the rollup counts as a failure: a *Failure
// kind such as PostToolUseFailure, or a non-zero exit_status / exit_code in the payload).
//
// Cheap by construction: status reads a copy of an in-memory map; ferry.db is queried only
// by Seed() when the store opens (today's events through the events_ts index, open sessions
// and last times from the sessions table). Afterwards the store thread adds each committed
// batch (Apply, after the commit), so the figures are exactly those of the rows in ferry.db.
//
// Threads: Seed() on whichever thread opens the store, Apply() on the store thread, Write()
// on the io thread (status). One leaf mutex guards the map.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/base/thread_annotations.h"
#include "proto/event.h"

namespace SQLite {
class Database;
}

namespace ferry::store {

// The start of the local day holding `ns` (ns since the epoch, local time zone).
int64_t LocalDayStart(int64_t ns);

struct SourceError {
  int64_t ts = 0;
  std::string kind, session, message;
};

// One batch's share for one source.
struct SourceDelta {
  int64_t today = 0;  // events with ts in the local day `day_start`
  int64_t last_ts = INT64_MIN;
  int64_t opened = 0;  // sessions opened minus sessions closed
  std::optional<SourceError> error;
};

using SourceDeltas = std::map<std::string, SourceDelta, std::less<>>;

// One batch's figures per source (store thread).
struct SourceBatch {
  SourceDeltas deltas;
  int64_t day = 0, next_day = 0;  // the local day the batch counts "today" in
  // Empties the batch and takes the local day of `now_ns`.
  void Begin(int64_t now_ns);
  // A stored event; `failure`: the rollup counts it as one (its payload then gives the message).
  void Add(std::string_view source, int64_t ts, std::string_view kind, std::string_view session,
           bool failure, std::string_view payload_json);
};

// The error text of a failure event's payload: Claude Code's `error` (first line), else
// "exit N: command" from a shell's exit_status and command. At most 200 bytes.
std::string FailureMessage(std::string_view payload_json);

class SourceStats {
 public:
  // Replaces the figures with those of `db` as of `now_ns`. Throws SQLite::Exception.
  void Seed(SQLite::Database& db, int64_t now_ns);
  // Adds a committed batch, computed for the local day starting at `day_start`.
  void Apply(const SourceDeltas& deltas, int64_t day_start);
  // The `sources` array, as of `now_ns` (a count of an earlier day shows 0).
  void Write(proto::JsonWriter& w, int64_t now_ns) const;

 private:
  struct Stat {
    int64_t day_start = 0;
    int64_t today = 0;
    int64_t last_ts = INT64_MIN;
    int64_t open_sessions = 0;
    std::optional<SourceError> error;  // of the day `day_start`
  };
  mutable Mutex mu_;  // leaf
  std::map<std::string, Stat, std::less<>> stats_ FERRY_GUARDED_BY(mu_);
};

}  // namespace ferry::store
