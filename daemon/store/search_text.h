// The text `ferry search` indexes for one event (docs/queries.md "Search" lists it per host):
// what the store writer puts in the FTS5 table `search` with the event's row, and what the
// schema-2 migration and [store] search = true index for rows already stored.
//
//   prompt  the prompt of UserPromptSubmit (Claude Code, Codex), BeforeAgent (Gemini),
//           beforeSubmitPrompt (Cursor), userPromptSubmitted (Copilot)
//   tool    "TOOL: INPUT" for a tool call before it runs (PreToolUse, BeforeTool, preToolUse,
//           beforeShellExecution, beforeMCPExecution; afterFileEdit): INPUT is tool_input's
//           command, file_path, pattern, url, query or prompt, else its string values; then
//           its description on a second line
//   output  a tool call's result (PostToolUse, PostToolUseFailure, AfterTool, postToolUse,
//           afterShellExecution, afterMCPExecution): tool_response as text, or its stdout (and
//           stderr), llmContent, file.content, output or result, else its string values; or the
//           payload's error, output, toolResult.textResultForLlm or result_json
//   shell   the command of a shell event (kind "command", from ferry init)
// Text is cut to its first kMaxSearchText bytes (at a character boundary).
//
// SearchIndexer writes that text into the FTS5 table `search` (schema.h): the store writer
// for each new event, and the schema-2 migration and SetSearch(true) for the stored ones.
//
// Threads: the functions are pure; a SearchIndexer belongs to the thread that owns its
// connection.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <rapidjson/document.h>

#include "daemon/store/raw_statement.h"

namespace ferry::store {

inline constexpr size_t kMaxSearchText = 8192;

// The search kind of an event kind ("prompt", "tool", "output", "shell"), or nullptr when
// events of that kind give no text (then their payload need not be parsed).
const char* SearchKindOf(std::string_view event_kind);

// Fills *text with the text of an event of `event_kind` (SearchKindOf not null) whose payload
// is `payload`; false when there is none (no such field, a payload that is not an object).
bool SearchText(std::string_view event_kind, const rapidjson::Value& payload, std::string* text);

class SearchIndexer {
 public:
  // `enabled` false ([store] search = false): Add does nothing.
  SearchIndexer(sqlite3* db, bool enabled = true);
  // Indexes event `seq` of `event_kind` whose payload is the JSON text `payload`, when it
  // gives text (only then is the payload parsed). Throws SQLite::Exception on failure.
  void Add(int64_t seq, std::string_view event_kind, std::string_view payload);
  // Indexes transcript_messages row `id` when it is an assistant message (the user's prompts
  // are indexed from their hook events already): rowid -id, origin 'transcripts', kind
  // 'assistant', the text cut at kMaxSearchText. Throws SQLite::Exception on failure.
  void AddMessage(int64_t id, std::string_view role, std::string_view text);
  // Hands back the scratch buffers' memory.
  void Trim();
  // Test hook: bytes held by the payload document's pool.
  size_t TEST_pool_bytes() { return doc_.GetAllocator().Size(); }

 private:
  RawStatement put_, put_message_;
  bool enabled_;
  rapidjson::Document doc_;
  std::string text_;
};

}  // namespace ferry::store
