// The source worked out from the payload, where a host runs another host's hooks
// (docs/hooks.md "Which host sent it"). Cursor runs the hooks in Claude Code's settings files
// ("third-party hooks"), so its events arrive labelled claude-code, and twice when ferry is
// also in ~/.cursor/hooks.json. ferryd stores such an event as `cursor`, with the client's
// label in `source_claimed`, and stores the two deliveries of one hook call once (TwinWindow).
//
// Threads: pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

namespace ferry {

// A Cursor hook payload: an object with a string `cursor_version` (Cursor 2.x), or with the
// fields every Cursor event carries since 1.7: string `conversation_id` and `generation_id`
// and an array `workspace_roots`. Claude Code's payloads have none of these.
bool IsCursorPayload(const rapidjson::Value& payload);

// The source to store `event` (a validated envelope) under instead of its own, or empty:
// "cursor" for an event labelled claude-code whose payload is Cursor's and which carries no
// source_claimed yet.
std::string_view RelabelSource(const rapidjson::Value& event);

// One hook call as the twin rule sees it: events with the same key (kind, session and the
// payload's bytes), one labelled by Cursor's own hooks.json (native) and one relabelled from
// claude-code, emitted within TwinWindow::kMaxTsApart, are the same call.
struct TwinProbe {
  std::string key;  // empty: not a Cursor payload; the rule does not apply
  bool relabelled = false;
  int64_t ts = 0;
};

// Fills *probe for `event` (a validated envelope) with its payload as received
// (`payload_json`, empty when none). probe->key stays empty unless the payload is Cursor's
// and the event is labelled cursor (native) or is relabelled.
void MakeTwinProbe(const rapidjson::Value& event, std::string_view payload_json, TwinProbe* probe);

}  // namespace ferry
