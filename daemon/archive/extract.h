// Reads user prompts and assistant text out of transcript lines (docs/archive.md
// "Messages"), for ferry.db's transcript_messages:
//  - Claude Code JSONL: {"type":"user"|"assistant", "message":{"content": "..." | [{"type":
//    "text","text":"..."}, ...]}, "timestamp":"<ISO 8601>"} (tool_use and tool_result blocks
//    are not text and are left out; so are lines with "isMeta":true);
//  - Codex rollout JSONL: {"timestamp", "type":"event_msg", "payload":{"type":"user_message"|
//    "agent_message", "message":"..."}}.
// Other lines (and Gemini's whole-file JSON) give nothing.
//
// Threads: pure; any thread.
#pragma once

#include <string_view>
#include <vector>

#include "daemon/store/transcript_feed.h"

namespace ferry::archive {

// Appends the messages of each complete line of `lines` (text up to its last '\n').
void ExtractMessages(std::string_view source, std::string_view session, std::string_view lines,
                     std::vector<TranscriptMessage>* out);

// "2025-11-24T06:12:41.123Z" as ns since the epoch; 0 when it is not that shape.
int64_t ParseIsoTimestamp(std::string_view text);

}  // namespace ferry::archive
