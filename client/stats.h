// `ferry stats`: per host (source) and per project (cwd), sessions, prompts, events, tool calls
// by tool, failure rate, p50/p95 tool-call duration, the slowest calls and commands, and shell
// commands by exit status; a table for people or, with --json, one JSON object. The numbers
// come from one read-only SQL statement over the events table and the tool_spans view
// (docs/queries.md "Tool spans" and "ferry stats"), which ferryd runs; the client holds no
// SQLite. Works when ferryd is down (a read-only ferryd answers, client/offline.h).
#pragma once

namespace ferry::client {

int RunStats(int argc, char** argv);

}  // namespace ferry::client
