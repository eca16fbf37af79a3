// The pieces of `ferry hooks`: the JSON merge (Claude Code, Cursor, Gemini CLI), the TOML
// block edit (Codex) and the diff printer. Pure functions on text; hooks.cc does the I/O.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace ferry::client::hooks {

// Shape of a JSON hook config: event -> [ {matcher?, hooks: [handler]} ] (Claude Code,
// Gemini CLI) or event -> [ handler ] (Cursor, which also wants "version": 1; GitHub Copilot
// CLI, "version": 1 and the command under "bash"; Windsurf, no version).
enum class JsonStyle { kClaude, kGemini, kCursor, kCopilot, kWindsurf };

// Styles whose event lists hold handlers directly (no groups).
inline bool FlatStyle(JsonStyle s) {
  return s == JsonStyle::kCursor || s == JsonStyle::kCopilot || s == JsonStyle::kWindsurf;
}

// Windsurf's payload names its event in agent_action_name, which `ferry emit` does not read:
// its commands name the event with --kind (inserted before --stdin).
std::string CommandWithKind(const std::string& command, std::string_view event);

// Every command ferry installs ends with this word: it is $0 of the `sh -c` script, so it
// shows in error messages, and it is how uninstall finds exactly ferry's entries.
inline constexpr std::string_view kMarker = " ferry-hook";

inline bool IsFerryCommand(std::string_view command) { return command.ends_with(kMarker); }

// The shell command a hook runs: `bin` (absolute, or "ferry" to look it up on PATH) emits
// the event with --source `source`; without a ferry binary it still drains stdin and exits 0.
std::string HookCommand(const std::string& bin, std::string_view source);

struct JsonEdit {
  bool ok = false;
  std::string error;     // when !ok: "line:col: what" (the file is left alone)
  bool changed = false;  // whether `text` differs in meaning from the input
  bool empty = false;    // the result holds nothing but ferry's own skeleton
  int removed = 0;       // ferry handlers taken out
  std::string text;      // the new file content
};

// Takes ferry's handlers out of `input` and, when `install`, adds them for `events` with
// `command`. The output keeps the input's key order and indent width.
JsonEdit EditJson(std::string_view input, JsonStyle style, const std::vector<std::string>& events,
                  const std::string& command, bool install);

// Whether two JSON texts hold equal values (false when either does not parse).
bool JsonEqual(std::string_view a, std::string_view b);

// Codex config.toml. The block ferry appends starts and ends with these lines.
inline constexpr std::string_view kTomlBegin = "# >>> ferry hooks >>>";
inline constexpr std::string_view kTomlEnd = "# <<< ferry hooks <<<";

struct TomlEdit {
  bool ok = false;
  std::string error;  // "line:col: what"
  bool had_block = false;
  std::string text;
};

// Checks that `input` is TOML that ferry can append to safely (a line-oriented check, not a
// full parser: strings, brackets, headers, key = value, and no conflicting `hooks`
// definition), removes any ferry block, and when `install` appends a fresh one.
TomlEdit EditToml(std::string_view input, const std::vector<std::string>& events,
                  const std::string& command, bool install);

// One ferry handler found in a config file (for `ferry doctor`).
struct FerryEntry {
  std::string event;
  std::string command;
  bool has_timeout = false;
  // Codex only: the index of its [[hooks.<Event>]] group and of the handler in it, the way
  // Codex keys its trust ("<file>:<event_snake_case>:<group>:<handler>").
  int group = -1, handler = -1;
};

// ferry's handlers in a JSON config of `style`, in file order; false with *error
// ("line:col: what") when it does not parse.
bool ListFerryJson(std::string_view text, JsonStyle style, std::vector<FerryEntry>* out,
                   std::string* error);

// ferry's handlers in Codex's config.toml: every [[hooks.<Event>.hooks]] table whose command
// (a one-line string) ends with the marker, inside ferry's block or not.
// With `trusted`, also the keys of the [hooks.state."<key>"] tables that hold a
// trusted_hash (Codex's record of the hooks the user trusted in /hooks).
bool ListFerryToml(std::string_view text, std::vector<FerryEntry>* out, std::string* error,
                   std::vector<std::string>* trusted = nullptr);

// A unified diff of two texts (3 lines of context), "" when equal.
std::string UnifiedDiff(std::string_view before, std::string_view after, const std::string& name_a,
                        const std::string& name_b);

}  // namespace ferry::client::hooks
