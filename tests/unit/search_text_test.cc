// store::SearchText (daemon/store/search_text.h): the text `ferry search` indexes for each
// host's events, from the hook payload fixtures (tests/fixtures/hooks) and a few shapes the
// fixtures lack (Copilot CLI, Claude Code's Read and Grep results, the 8 KiB cap).
#include "daemon/store/search_text.h"

#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>

#include <SQLiteCpp/Database.h>
#include <rapidjson/document.h>
#include <catch2/catch.hpp>

#include "daemon/store/record_scan.h"

namespace {

using ferry::store::kMaxSearchText;
using ferry::store::SearchKindOf;
using ferry::store::SearchText;

std::string TextOf(const std::string& kind, const std::string& json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  REQUIRE_FALSE(doc.HasParseError());
  std::string text = "left over";
  if (!SearchText(kind, doc, &text)) {
    CHECK(text.empty());
    return "(none)";
  }
  return text;
}

std::string Fixture(const std::string& name) {
  std::ifstream in(std::string(FERRY_FIXTURES_DIR) + "/" + name, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

bool HaveFixtures() {
  struct stat st;
  return ::stat((std::string(FERRY_FIXTURES_DIR) + "/MANIFEST.json").c_str(), &st) == 0;
}

}  // namespace

TEST_CASE("search text: the kind of text each event kind gives", "[search_text]") {
  for (const char* k :
       {"UserPromptSubmit", "BeforeAgent", "beforeSubmitPrompt", "userPromptSubmitted"})
    CHECK(std::string(SearchKindOf(k)) == "prompt");
  for (const char* k : {"PreToolUse", "BeforeTool", "beforeShellExecution", "beforeMCPExecution",
                        "preToolUse", "afterFileEdit"})
    CHECK(std::string(SearchKindOf(k)) == "tool");
  for (const char* k : {"PostToolUse", "PostToolUseFailure", "AfterTool", "afterShellExecution",
                        "afterMCPExecution", "postToolUse", "postToolUseFailure"})
    CHECK(std::string(SearchKindOf(k)) == "output");
  CHECK(std::string(SearchKindOf("command")) == "shell");
  for (const char* k : {"SessionStart", "Stop", "stop", "Notification", "agent-turn-complete",
                        "afterAgentResponse", "posttooluse", ""})
    CHECK(SearchKindOf(k) == nullptr);
}

TEST_CASE("search text: each host's fixtures", "[search_text]") {
  if (!HaveFixtures()) {
    WARN("no hook fixtures at " << FERRY_FIXTURES_DIR << "; skipped");
    return;
  }
  const struct {
    const char* file;
    const char* kind;
    std::string want;
  } cases[] = {
      {"claude-code/PreToolUse.json", "PreToolUse",
       "Bash: cmake --build build -j16 && ctest --test-dir build --output-on-failure -R "
       "journal\nBuild and run the journal tests"},
      {"claude-code/PostToolUseFailure.json", "PostToolUseFailure",
       "Exit code 2\nmake: Entering directory '/home/dana/src/ferry/build'\ninstall: cannot "
       "create directory '/opt/ferry': Permission denied\nmake: *** [Makefile:112: install] "
       "Error 1"},
      {"codex/UserPromptSubmit.json", "UserPromptSubmit",
       "Add a --durable flag to `ferry emit` and document it in docs/protocol.md"},
      {"codex/PreToolUse.json", "PreToolUse", "Bash: rg -n \"durable\" client/ docs/protocol.md"},
      {"codex/PostToolUse.json", "PostToolUse",
       "client/emit.cpp:41:  bool durable = false;\nclient/emit.cpp:77:  "
       "app.add_flag(\"--durable\", durable, \"wait for a durable ack\");\ndocs/protocol.md:58:A "
       "client can ask for a durable ack per event.\n"},
      {"gemini/BeforeAgent.json", "BeforeAgent",
       "List the open TODOs in daemon/ and group them by file"},
      {"gemini/BeforeTool.json", "BeforeTool",
       "run_shell_command: rg -n 'TODO' daemon/\nFind TODO comments in daemon/"},
      {"gemini/AfterTool.json", "AfterTool",
       "daemon/upstream/sink.cpp:203: // TODO: honor Retry-After dates\n"
       "daemon/store/writer.cpp:57: // TODO: vacuum schedule\n"},
      {"cursor/beforeSubmitPrompt.json", "beforeSubmitPrompt",
       "Why does `ferry tail -f` stop after the daemon restarts? 🤔"},
      {"cursor/beforeShellExecution.json", "beforeShellExecution",
       "Shell: git log --oneline -n 20 -- daemon/journal"},
      {"cursor/afterShellExecution.json", "afterShellExecution",
       "a41c9e2 journal: truncate torn tail on open\n7be03f1 journal: crc32c over seq+ts+body\n"
       "19d7a6c journal: roll segments at 64 MiB\n"},
      {"cursor/beforeMCPExecution.json", "beforeMCPExecution",
       "github__create_issue: {\"owner\": \"dana\", \"repo\": \"ferry\", \"title\": \"tail -f "
       "stops after restart\", \"body\": \"Repro: `ferryd` restart while `ferry tail -f` "
       "runs.\"}"},
      {"cursor/afterFileEdit.json", "afterFileEdit", "Edit: /home/dana/src/ferry/client/emit.cpp"},
      {"shell/zsh-command.json", "command",
       "ctest --test-dir build -R journal --output-on-failure"},
      {"shell/fish-command.json", "command", "for f in build/*.log; echo $f (wc -l < $f); end"},
      {"claude-code/SessionStart.json", "SessionStart", "(none)"},
      {"codex/Stop.json", "Stop", "(none)"},
  };
  for (const auto& c : cases) {
    INFO(c.file);
    CHECK(TextOf(c.kind, Fixture(c.file)) == c.want);
  }
}

TEST_CASE("search text: Claude Code's prompt and Bash output whole", "[search_text]") {
  if (!HaveFixtures()) return;
  rapidjson::Document doc;
  const std::string prompt = Fixture("claude-code/UserPromptSubmit.json");
  doc.Parse(prompt.data(), prompt.size());
  CHECK(TextOf("UserPromptSubmit", prompt) == doc["prompt"].GetString());
  const std::string post = Fixture("claude-code/PostToolUse.json");
  doc.Parse(post.data(), post.size());
  // stdout only: stderr is empty, and interrupted/isImage are not text.
  CHECK(TextOf("PostToolUse", post) == doc["tool_response"]["stdout"].GetString());
  // The ~200 KB Read result: its file content, cut to 8 KiB.
  const std::string large = TextOf("PostToolUse", Fixture("claude-code/PostToolUse-large.json"));
  CHECK(large.size() <= kMaxSearchText);
  CHECK(large.size() > kMaxSearchText - 4);
}

TEST_CASE("search text: shapes the fixtures lack", "[search_text]") {
  // Copilot CLI: camelCase names, arguments as a JSON string, the result for the model.
  CHECK(TextOf("preToolUse", R"({"toolName":"bash","toolArgs":"{\"command\":\"ls -la\"}"})") ==
        "bash: {\"command\":\"ls -la\"}");
  CHECK(
      TextOf(
          "postToolUse",
          R"({"toolName":"bash","toolResult":{"resultType":"success","textResultForLlm":"ok"}})") ==
      "ok");
  CHECK(TextOf("userPromptSubmitted", R"({"prompt":"fix the build"})") == "fix the build");
  // Claude Code: Read gives the file's content; stderr follows stdout; other objects give
  // their string values in order.
  CHECK(TextOf("PostToolUse",
               R"({"tool_response":{"type":"text","file":{"filePath":"/a","content":"x = 1"}}})") ==
        "x = 1");
  CHECK(TextOf("PostToolUse", R"({"tool_response":{"stdout":"out","stderr":"err"}})") ==
        "out\nerr");
  CHECK(TextOf("PostToolUse",
               R"({"tool_response":{"mode":"files","filenames":["a.cc","b.cc"],"n":2}})") ==
        "files\na.cc\nb.cc");
  CHECK(TextOf("PreToolUse", R"({"tool_name":"Edit","tool_input":{"file_path":"/a/b.cc",)"
                             R"("old_string":"x","new_string":"y"}})") == "Edit: /a/b.cc");
  CHECK(TextOf("PreToolUse", R"({"tool_name":"mcp__x","tool_input":{"q":"a","n":1}})") ==
        "mcp__x: a");
  // Nothing to index: no such field, not an object, an empty prompt.
  CHECK(TextOf("UserPromptSubmit", R"({"session_id":"s"})") == "(none)");
  CHECK(TextOf("UserPromptSubmit", R"("a string payload")") == "(none)");
  CHECK(TextOf("UserPromptSubmit", R"({"prompt":""})") == "(none)");
  CHECK(TextOf("command", R"({"command":42})") == "(none)");
  // The cap falls back to a character boundary: 8191 bytes, then a 2-byte é.
  const std::string cut =
      TextOf("command", "{\"command\":\"" + std::string(kMaxSearchText - 1, 'a') + "\xc3\xa9\"}");
  CHECK(cut == std::string(kMaxSearchText - 1, 'a'));
}

// One document parses every payload the store indexes: its pool must not keep them all
// (a 1,000,000-event catch-up held 130 MB in it before, docs/benchmarks.md Run O).
TEST_CASE("search indexer: the payload document's pool stays bounded", "[search_text]") {
  SQLite::Database db(":memory:", SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
  db.exec("CREATE VIRTUAL TABLE search USING fts5(origin UNINDEXED, kind UNINDEXED, text)");
  ferry::store::SearchIndexer indexer(db.getHandle());
  const std::string prompt(2000, 'p');
  size_t peak = 0;
  for (int i = 1; i <= 3000; ++i) {
    const std::string payload = R"({"hook_event_name":"UserPromptSubmit","prompt":"word )" +
                                std::to_string(i) + " " + prompt + R"("})";
    indexer.Add(i, "UserPromptSubmit", payload);
    peak = std::max(peak, indexer.TEST_pool_bytes());
  }
  CHECK(db.execAndGet("SELECT count(*) FROM search").getInt() == 3000);
  CHECK(db.execAndGet("SELECT rowid FROM search WHERE search MATCH '2999'").getInt() == 2999);
  // 3,000 payloads of 2 KB kept would be ~6 MB; the pool is cleared past kKeepParsePool.
  CHECK(peak > 0);
  CHECK(peak <= ferry::store::kKeepParsePool + (256u << 10));
}

TEST_CASE("RecycleDocument clears a reused document's pool only past `keep`", "[search_text]") {
  rapidjson::Document doc;
  const std::string json = R"({"k":")" + std::string(4000, 'x') + R"("})";
  size_t grew = 0;
  for (int i = 0; i < 100; ++i) {
    doc.Parse(json.data(), json.size());
    grew = std::max(grew, doc.GetAllocator().Size());
  }
  CHECK(grew > 100 * 4000);  // what rapidjson does alone: every parse kept
  ferry::proto::RecycleDocument(&doc, 64u << 10);
  CHECK(doc.GetAllocator().Size() == 0);
  CHECK(doc.IsNull());
  size_t peak = 0;
  for (int i = 0; i < 100; ++i) {
    ferry::proto::RecycleDocument(&doc, 64u << 10);
    doc.Parse(json.data(), json.size());
    REQUIRE(doc["k"].GetStringLength() == 4000);
    peak = std::max(peak, doc.GetAllocator().Size());
  }
  CHECK(peak <= (64u << 10) + (64u << 10));
  const size_t before = doc.GetAllocator().Size();
  ferry::proto::RecycleDocument(&doc, 1u << 30);  // under `keep`: left as it is
  CHECK(doc.GetAllocator().Size() == before);
  CHECK(doc["k"].GetStringLength() == 4000);
}
