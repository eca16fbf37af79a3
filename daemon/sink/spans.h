// Tool spans for the OTLP traces sink (`signal = "traces"`): pairs each pre-tool event with
// its post-tool event, as the tool_spans view of ferry.db does (docs/queries.md "How calls
// are paired"), into one span per call, plus one span per shell command. Design and every
// rule: docs/sinks.md ("Traces"); the wire format: docs/protocol.md ("otlp-http traces").
//
// A call's start event may arrive in an earlier batch than its end, or before a ferryd
// restart. The start events still waiting for their end (PendingCall) are the planner's
// state: the sink keeps them in its cursor file, written in the same atomic rename as the
// cursor, so a start event the cursor has passed is never forgotten. Planning is a pure
// function of (pending, events), and every id is a hash of what the events carry, so a batch
// sent again after a crash carries the same spans with the same ids.
//
// Pure functions; any thread. No I/O.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "daemon/sink/encode.h"

namespace ferry {

// A start event waiting for its end event.
struct PendingCall {
  std::string source, session, cwd;
  std::string key;             // pairing key: "id:<tool_use_id>" or "in:<tool>\x1f<input>"
  std::string trace_id;        // 32 hex digits
  std::string span_id;         // 16 hex digits
  std::string parent_span_id;  // "" or 16 hex digits (a subagent's call)
  std::string tool, input, tool_use_id, agent_id, agent_type;
  std::string subagent_type;  // a Task/Agent call's tool_input.subagent_type
  uint64_t seq = 0;           // the start event's seq
  int64_t start_ns = 0;       // its ts
  int64_t received_ns = 0;    // when ferryd received it (span_timeout counts from here)
};

// One span, ready to encode.
struct ToolSpan {
  size_t event = 0;  // index in the planned events of the event that finished it
  std::string trace_id, span_id, parent_span_id;
  std::string name;  // the tool; "shell" for a shell command
  std::string source, session, cwd, input, tool_use_id, agent_id, agent_type;
  int64_t start_ns = 0, end_ns = 0;
  // "ok", "failed", "interrupted", "unfinished", "unknown" (tool_spans' outcome column).
  std::string outcome;
  std::string status_message;           // for failed and interrupted: why, at most 200 characters
  uint64_t start_seq = 0, end_seq = 0;  // 0: that event is missing
  int64_t output_bytes = -1;            // -1: no output
  bool shell = false;                   // a shell command, not a tool call
  bool has_exit_status = false;
  int64_t exit_status = 0;
};

struct SpanOptions {
  int64_t span_timeout_ns = 3600LL * 1000 * 1000 * 1000;  // a start older than this is unfinished
  size_t max_pending = 1000;  // beyond this the oldest start is sent as unfinished
};

// Plans the spans of `events` (in seq order), given the calls pending before them. Updates
// *pending to what is pending after them (in seq order of their start events) and appends
// one ToolSpan per finished call to *spans, in the order the events finish them:
//   - an end event finishes the pending call with its key (same source and session); an end
//     event with no start gets a span with start = end and start_seq 0;
//   - a start event whose key is already pending finishes the older call as unfinished;
//   - a session's end event (SessionEnd, session_end, sessionEnd, exit) finishes its pending
//     calls as unfinished; so does any event received more than span_timeout after a call's
//     start, and a start event that would make more than max_pending;
//   - a shell `command` event is a span of its own (start = ts - duration_ns).
// `finish_all`: every call still pending at the end is finished as unfinished too (a
// dead-letter replay, which has no later batch).
void PlanSpans(const SpanOptions& options, std::span<const SinkEvent> events, bool finish_all,
               std::vector<PendingCall>* pending, std::vector<ToolSpan>* spans);

// Trace and span ids (docs/sinks.md "Traces"): the first 16 (traceId) or 8 (spanId) bytes of
// SHA-256 over "ferry.trace\n" source "\n" session, or "ferry.span\n" source "\n" session
// "\n" call, as lowercase hex; `call` is "call:<tool_use_id>" or "event:<event id>".
std::string TraceId(std::string_view source, std::string_view session);
std::string SpanId(std::string_view source, std::string_view session, std::string_view call);
// SHA-256 of `data` (FIPS 180-4), as 32 bytes.
std::string Sha256(std::string_view data);

// The pending calls as the JSON array the cursor file holds ("pending_spans"), and back.
// FromJson returns false (and leaves *out empty) when `v` is not such an array.
std::string PendingCallsToJson(const std::vector<PendingCall>& pending);
bool PendingCallsFromJson(const rapidjson::Value& v, std::vector<PendingCall>* out);

// otlp-http with signal "traces": an ExportTraceServiceRequest in the OTLP/JSON encoding
// (docs/protocol.md "otlp-http traces"), resource attributes as EncodeOtlpJson's, one
// scopeSpans with scope {name:"ferry", version}, one span per ToolSpan.
std::string EncodeOtlpTraces(const BatchMeta& meta, std::span<const ToolSpan> spans);

}  // namespace ferry
