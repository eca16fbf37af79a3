// How `ferry tail` and `ferry sessions` show things (client/show.h, client/tail_line.h):
// durations, terminal widths of UTF-8 text, cutting with "…", local times and the summary
// line of each host's real hook payload (tests/fixtures/hooks).
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <ctime>
#include <string>

#include "client/show.h"
#include "client/tail_line.h"
#include "tests/unit/test_util.h"

namespace ferry::client {
namespace {

// Sets TZ for one scope (and back).
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    const char* old = std::getenv("TZ");
    had_ = old != nullptr;
    if (had_) old_ = old;
    ::setenv("TZ", tz, 1);
    ::tzset();
  }
  ~ScopedTz() {
    if (had_) {
      ::setenv("TZ", old_.c_str(), 1);
    } else {
      ::unsetenv("TZ");
    }
    ::tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  bool had_ = false;
  std::string old_;
};

constexpr int64_t kS = 1000000000;
constexpr int64_t kT0 = 1894701601234000000;  // 2030-01-15T10:00:01.234Z

TEST_CASE("client show: durations for people", "[client_show]") {
  CHECK(FormatDuration(-5) == "0µs");
  CHECK(FormatDuration(41000) == "41µs");
  CHECK(FormatDuration(999999) == "999µs");
  CHECK(FormatDuration(1000000) == "1.0ms");
  CHECK(FormatDuration(8803000) == "8.8ms");
  CHECK(FormatDuration(612004000) == "612ms");
  CHECK(FormatDuration(1234000000) == "1.2s");
  CHECK(FormatDuration(59999000000) == "59.9s");
  CHECK(FormatDuration(72 * kS) == "1m12s");
  CHECK(FormatDuration(3599 * kS) == "59m59s");
  CHECK(FormatDuration(7380 * kS) == "2h03m");
  CHECK(FormatDuration(273600 * kS) == "3d04h");
}

TEST_CASE("client show: terminal width of UTF-8 text and cutting with …", "[client_show]") {
  CHECK(DisplayWidth("make test") == 9);
  CHECK(DisplayWidth("日本語") == 6);
  CHECK(DisplayWidth("🚀 ok") == 5);
  CHECK(DisplayWidth("cafe\xcc\x81") == 4);     // e + combining acute
  CHECK(DisplayWidth("👩🏽‍💻") == 4);  // two people-wide glyphs joined: counted as is
  CHECK(DisplayWidth("\xff\xfe") == 2);         // bad bytes: one column each
  CHECK(FitWidth("hello world", 11) == "hello world");
  CHECK(FitWidth("hello world", 6) == "hello…");
  CHECK(FitWidth("hello", 1) == "…");
  CHECK(FitWidth("hello", 0).empty());
  CHECK(FitWidth("日本語です", 6) == "日本…");  // a wide character is never split
  CHECK(FitWidth("日本語です", 5) == "日本…");
  CHECK(DisplayWidth(FitWidth("日本語です", 4)) <= 4);
  CHECK(OneLine("a\nb\tc\r") == "a↵b c ");
}

TEST_CASE("client show: local time with the zone, UTC, RFC 3339", "[client_show]") {
  ScopedTz tz("IST-5:30");
  CHECK(FormatTime(kT0, false, true, false) == "2030-01-15 15:30:01.234");
  CHECK(FormatTime(kT0, false, false, true) == "2030-01-15 15:30:01 IST");
  CHECK(FormatTime(kT0, true, true, false) == "2030-01-15 10:00:01.234Z");
  CHECK(FormatIsoTime(kT0, false) == "2030-01-15T15:30:01+05:30");
  CHECK(FormatIsoTime(kT0, true) == "2030-01-15T10:00:01Z");
  ScopedTz west("PST8");
  CHECK(FormatIsoTime(kT0, false) == "2030-01-15T02:00:01-08:00");
}

TEST_CASE("client show: --since/--until times resolve in local time or UTC", "[client_show]") {
  ScopedTz tz("IST-5:30");
  TimeArg t;
  REQUIRE(ParseTimeArg("2030-01-15T15:30:01", &t));
  CHECK(ResolveTime(t, false, 0) == kT0 / kS * kS);
  CHECK(ResolveTime(t, true, 0) == kT0 / kS * kS + 19800 * kS);  // read as UTC
  REQUIRE(ParseTimeArg("2030-01-15T10:00:01Z", &t));
  CHECK(ResolveTime(t, false, 0) == kT0 / kS * kS);
  REQUIRE(ParseTimeArg("90m", &t));
  CHECK(ResolveTime(t, false, kT0) == kT0 - 5400 * kS);
  // A clock time is today's, in the zone asked for.
  REQUIRE(ParseTimeArg("09:00", &t));
  CHECK(ResolveTime(t, false, kT0) == (kT0 / kS - 6 * 3600 - 30 * 60 - 1) * kS);
  CHECK(ResolveTime(t, true, kT0) == (kT0 / kS - 3600 - 1) * kS);
  REQUIRE(ParseTimeArg("yesterday", &t));
  CHECK(ResolveTime(t, false, kT0) == (kT0 / kS - 15 * 3600 - 30 * 60 - 1 - 86400) * kS);
}

std::string SummaryOf(const std::string& event_json) {
  rapidjson::Document doc;
  REQUIRE_FALSE(doc.Parse(event_json.data(), event_json.size()).HasParseError());
  return Summarize(doc);
}

TEST_CASE("client show: a summary per shell command and agent event", "[client_show]") {
  CHECK(SummaryOf(
            R"({"payload":{"command":"make test","exit_status":2,"duration_ns":1234000000}})") ==
        "exit 2    1.2s  make test");
  CHECK(SummaryOf(R"({"payload":{"command":"x\ny\nz","exit_status":130}})") ==
        "exit 130     -  x (+2 lines)");
  CHECK(SummaryOf(R"({"payload":{"tool_name":"Read","tool_input":{"file_path":"/a/b.cc"}}})") ==
        "Read  /a/b.cc");
  CHECK(SummaryOf(R"({"payload":{"tool_name":"mcp__x","tool_input":{"n":1}}})") ==
        "mcp__x  {\"n\":1}");
  CHECK(SummaryOf(R"({"payload":{"tool_name":"Bash","tool_input":{"command":"ls"},)"
                  R"("error":"exit 1\nmore"}})") == "Bash  ls  error: exit 1 (+1 line)");
  CHECK(SummaryOf(R"({"payload":"not json\u0001"})") == "not json ");
  CHECK(SummaryOf(R"({"payload":[1,2]})") == "[1,2]");
  CHECK(SummaryOf(R"({})").empty());
  CHECK(SummaryOf(R"({"payload":{"session_id":"s","reason":"exit","n":3,"o":{}}})") ==
        "reason=exit  n=3");
}

TEST_CASE("client show: each host's fixtures give a readable line", "[client_show]") {
  const std::string dir = FERRY_FIXTURES_DIR;
  struct stat st;
  if (::stat((dir + "/MANIFEST.json").c_str(), &st) != 0) {
    WARN("no hook fixtures at " << dir << "; skipped");
    return;
  }
  const std::pair<const char*, const char*> cases[] = {
      {"claude-code/PreToolUse.json",
       "Bash  cmake --build build -j16 && ctest --test-dir build --output-on-failure -R journal"},
      {"claude-code/Notification.json", "Claude needs your permission to use Bash"},
      {"claude-code/SessionEnd.json", "reason=prompt_input_exit"},
      {"claude-code/SessionStart.json", "source=startup  model=claude-sonnet-4-5-20250929"},
      {"claude-code/Stop.json", "Done. Summary: (+8 lines)"},
      {"codex/PreToolUse.json", "Bash  rg -n \"durable\" client/ docs/protocol.md"},
      {"cursor/beforeShellExecution.json", "git log --oneline -n 20 -- daemon/journal"},
      {"cursor/beforeSubmitPrompt.json",
       "Why does `ferry tail -f` stop after the daemon restarts? 🤔"},
      {"cursor/afterFileEdit.json", "/home/dana/src/ferry/client/emit.cpp"},
      {"gemini/BeforeTool.json", "run_shell_command  rg -n 'TODO' daemon/"},
      {"gemini/BeforeAgent.json", "List the open TODOs in daemon/ and group them by file"},
      {"shell/zsh-command.json",
       "exit 0   612ms  ctest --test-dir build -R journal --output-on-failure"},
      {"shell/bash-command.json",
       "exit 1   8.8ms  grep -c ERROR /var/log/ferry/ferryd.log | sort -n | tail -1"},
  };
  for (const auto& [file, want] : cases) {
    INFO(file);
    CHECK(SummaryOf("{\"payload\":" + test::ReadFile(dir + "/" + file) + "}") == want);
  }
}

TEST_CASE("client show: the short line's columns and the width", "[client_show]") {
  ScopedTz tz("IST-5:30");
  EventView v;
  v.seq = 42;
  v.when_ns = kT0;
  v.source = "claude-code";
  v.kind = "PostToolUseFailure";
  v.session = "3f2c9a1e-7b4d-4c1a-9e8f-2d6b5a0c7e41";
  const std::string want =
      "2030-01-15 15:30:01.234      42 claude-code PostToolUseFail… 3f2c9a1e  Bash  make";
  LineStyle style;
  CHECK(ShortLine(v, "Bash  make", style) == want);
  REQUIRE(DisplayWidth(want) == 81);  // "…" is one column, three bytes
  style.width = 81;
  CHECK(ShortLine(v, "Bash  make", style) == want);  // exactly as wide: not cut
  style.width = 80;
  CHECK(ShortLine(v, "Bash  make", style) == want.substr(0, want.size() - 2) + "…");
  style.width = 20;
  CHECK(ShortLine(v, "Bash  make", style) == "2030-01-15 15:30:01…");
  style.width = 0;
  v.has_exit = true;
  v.exit = 1;
  style.color = true;
  const std::string colored = ShortLine(v, "exit 1", style);
  CHECK(colored.find("\033[31mexit 1\033[0m") != std::string::npos);
  v.source.clear();
  v.session.clear();
  style.color = false;
  CHECK(ShortLine(v, "", style) ==
        "2030-01-15 15:30:01.234      42 -           PostToolUseFail… -");
}

}  // namespace
}  // namespace ferry::client
