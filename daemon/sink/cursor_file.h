// A sink's cursor file, <state>/cursors/<sink> (docs/sinks.md "Cursor"):
//   {"cursor":N}                                   everything up to seq N is delivered
//   {"cursor":N,"inflight_first":A,"inflight_last":B}  and seqs A..B were being sent, so a
//                                                  restart forms that batch again exactly
//   ...,"pending_spans":[...]                      a traces sink: the tool calls whose start
//                                                  event is at or before N and whose end has
//                                                  not come yet (sink/spans.h), saved in the
//                                                  same rename as the cursor
// Functions, no state; the sink thread calls them (Sink::Open on the io thread, once).
#pragma once

#include <cstdint>
#include <string>

#include "daemon/base/status.h"

namespace ferry::sink {

struct CursorState {
  uint64_t cursor = 0;
  uint64_t inflight_first = 0, inflight_last = 0;  // 0, 0: none
  std::string pending_spans;                       // a JSON array, or "" (none)
};

// Where a sink starts. A missing file starts at the journal's `oldest_seq` (cursor
// oldest-1); a cursor past `written_seq` means the journal was reset and starts there too.
// An in-flight range that does not start right after the cursor is dropped. Errors:
// Corruption when the file is not a cursor file (the message says how to recover).
// *found says whether the file existed; *reset whether the journal-reset rule applied
// (which also drops pending_spans: their start events are gone with the old journal).
Status LoadCursor(const std::string& path, uint64_t oldest_seq, uint64_t written_seq,
                  CursorState* state, bool* found, bool* reset);

// Writes the file atomically (rename); `durable` also fsyncs it and its directory.
Status SaveCursor(const std::string& path, const CursorState& state, bool durable);

}  // namespace ferry::sink
