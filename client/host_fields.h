// Which top-level members of a hook's payload give its event the kind, session and cwd when
// the hook does not pass them (`ferry emit --stdin` and --argv-json; reference/hook-hosts.md):
// the event name (hook_event_name; Codex notify: type), the session (Claude, Codex hooks,
// Gemini, Copilot: session_id; Cursor: conversation_id; Codex notify: thread-id; Cline:
// taskId; Windsurf: trajectory_id) and the cwd (Cursor: workspace_roots[0] when an event has
// no cwd). The payload keeps them as well. Pure; any thread.
#pragma once
#include <span>
#include <string>

#include "proto/event.h"  // WantedMember

namespace ferry::client {

struct HostFields {
  std::string kind, session, cwd;
};

// The members to hand proto::ScanPayloadJson, in order of preference within each field:
// kHostFieldCount of them.
inline constexpr size_t kHostFieldCount = 10;
std::span<const proto::WantedMember> HostFieldsWanted();

// From the values ScanPayloadJson filled for HostFieldsWanted() (moved from): each field is
// the first of its members holding a non-empty string, else empty.
HostFields PickHostFields(std::string* values);

}  // namespace ferry::client
