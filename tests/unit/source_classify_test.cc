#include "daemon/ingest/source_classify.h"

#include <cstdlib>
#include <ctime>
#include <string>

#include <catch2/catch.hpp>

#include "daemon/ingest/twin_window.h"
#include "daemon/store/source_stats.h"
#include "proto/event.h"

namespace ferry {
namespace {

rapidjson::Document ParseJson(const std::string& text) {
  rapidjson::Document doc;
  proto::Error error;
  REQUIRE(proto::ParseJson(text, &doc, &error));
  return doc;
}

std::string Envelope(const std::string& source, const std::string& payload,
                     const std::string& extra = "") {
  return R"({"id":"00112233445566778899aabbccddeeff","ts":1000,"source":")" + source +
         R"(","kind":"stop","session":"c1")" + extra + R"(,"payload":)" + payload + "}";
}

const char* kCursor2 =
    R"({"conversation_id":"c1","generation_id":"g1","hook_event_name":"stop",)"
    R"("cursor_version":"2.1.46","workspace_roots":["/w"],"status":"completed"})";
const char* kCursor17 =  // Cursor 1.7: no cursor_version
    R"({"conversation_id":"c1","generation_id":"g1","hook_event_name":"stop",)"
    R"("workspace_roots":["/w"],"status":"completed"})";
const char* kClaude =
    R"({"session_id":"s1","transcript_path":"/t.jsonl","cwd":"/w","hook_event_name":"Stop",)"
    R"("stop_hook_active":false})";

TEST_CASE("A Cursor payload is told from Claude Code's by its own fields", "[sources]") {
  CHECK(IsCursorPayload(ParseJson(kCursor2)));
  CHECK(IsCursorPayload(ParseJson(kCursor17)));
  CHECK_FALSE(IsCursorPayload(ParseJson(kClaude)));
  // One Cursor field alone, or of the wrong type, is not enough.
  CHECK_FALSE(IsCursorPayload(ParseJson(R"({"conversation_id":"c1"})")));
  CHECK_FALSE(IsCursorPayload(
      ParseJson(R"({"conversation_id":"c1","generation_id":"g1","workspace_roots":"/w"})")));
  CHECK_FALSE(IsCursorPayload(ParseJson(R"({"cursor_version":2})")));
  CHECK_FALSE(IsCursorPayload(ParseJson(R"(["cursor_version"])")));
  CHECK_FALSE(IsCursorPayload(ParseJson(R"("cursor_version")")));
  // Nested fields do not count: a Claude tool input that mentions them stays Claude's.
  CHECK_FALSE(IsCursorPayload(ParseJson(R"({"tool_input":{"cursor_version":"2"}})")));
}

TEST_CASE("Only claude-code events with a Cursor payload are relabelled", "[sources]") {
  CHECK(RelabelSource(ParseJson(Envelope("claude-code", kCursor2))) == "cursor");
  CHECK(RelabelSource(ParseJson(Envelope("claude-code", kCursor17))) == "cursor");
  CHECK(RelabelSource(ParseJson(Envelope("claude-code", kClaude))).empty());
  CHECK(RelabelSource(ParseJson(Envelope("cursor", kCursor2))).empty());
  CHECK(RelabelSource(ParseJson(Envelope("gemini", kCursor2))).empty());
  // Labelled once already (a relay forwarding stored events): left alone.
  CHECK(RelabelSource(ParseJson(Envelope("claude-code", kCursor2, R"(,"source_claimed":"x")")))
            .empty());
}

TEST_CASE("The canonical envelope of a relabelled event keeps the claimed source", "[sources]") {
  const rapidjson::Document e = ParseJson(Envelope("claude-code", kCursor17));
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  proto::WriteEnvelope(e, w, {}, false, RelabelSource(e));
  CHECK(std::string(sb.GetString()) ==
        std::string(R"({"id":"00112233445566778899aabbccddeeff","ts":1000,"source":"cursor",)"
                    R"("kind":"stop","session":"c1","source_claimed":"claude-code","payload":)") +
            kCursor17 + "}");
  proto::Error error;
  CHECK(proto::ValidateEnvelope(ParseJson(sb.GetString()), "event", &error));
}

TwinProbe Probe(const std::string& source, const std::string& payload, int64_t ts = 1000) {
  const rapidjson::Document e = ParseJson(Envelope(source, payload));
  TwinProbe p;
  MakeTwinProbe(e, payload, &p);
  p.ts = ts;
  return p;
}

TEST_CASE("Twin probes only for Cursor payloads labelled cursor or relabelled", "[sources]") {
  CHECK_FALSE(Probe("cursor", kCursor2).key.empty());
  CHECK_FALSE(Probe("cursor", kCursor2).relabelled);
  CHECK(Probe("claude-code", kCursor2).relabelled);
  CHECK(Probe("claude-code", kCursor2).key == Probe("cursor", kCursor2).key);
  CHECK(Probe("claude-code", kClaude).key.empty());
  CHECK(Probe("gemini", kCursor2).key.empty());
  // Whitespace between tokens is not part of the key; every other byte is.
  CHECK(Probe("cursor", R"({ "conversation_id" : "c1", "generation_id":"g1",
        "workspace_roots":["/w"]})")
            .key == Probe("cursor", R"({"conversation_id":"c1","generation_id":"g1",)"
                                    R"("workspace_roots":["/w"]})")
                        .key);
}

TEST_CASE("TwinWindow matches a call's two deliveries and never two calls", "[sources]") {
  const std::string a = R"({"conversation_id":"c1","generation_id":"g1","workspace_roots":["/w"],)"
                        R"("tool_use_id":"toolu_A","command":"ls"})";
  const std::string b = R"({"conversation_id":"c1","generation_id":"g1","workspace_roots":["/w"],)"
                        R"("tool_use_id":"toolu_B","command":"ls"})";
  TwinWindow w;
  SECTION("the other way, same bytes: a twin, once") {
    w.Insert(Probe("cursor", a));
    CHECK(w.Take(Probe("claude-code", a)));
    CHECK_FALSE(w.Take(Probe("claude-code", a)));  // consumed: a third delivery is kept
    CHECK(w.size() == 0);
  }
  SECTION("the same way twice: two calls") {
    w.Insert(Probe("cursor", a));
    CHECK_FALSE(w.Take(Probe("cursor", a)));
    w.Insert(Probe("cursor", a));
    CHECK(w.size() == 2);
    // Each delivered the other way too: each relabelled one matches one native one.
    CHECK(w.Take(Probe("claude-code", a)));
    CHECK(w.Take(Probe("claude-code", a)));
    CHECK_FALSE(w.Take(Probe("claude-code", a)));
  }
  SECTION("two calls that differ only in their ids") {
    w.Insert(Probe("claude-code", a));
    CHECK_FALSE(w.Take(Probe("cursor", b)));
    w.Insert(Probe("cursor", b));
    CHECK(w.Take(Probe("cursor", a)));
    CHECK(w.Take(Probe("claude-code", b)));
    CHECK(w.size() == 0);
  }
  SECTION("emitted more than 10 s apart: not a twin") {
    w.Insert(Probe("cursor", a, 1000));
    CHECK_FALSE(w.Take(Probe("claude-code", a, 1000 + TwinWindow::kMaxTsApart + 1)));
    CHECK(w.Take(Probe("claude-code", a, 1000 + TwinWindow::kMaxTsApart)));
  }
  SECTION("a non-Cursor probe never matches, and is not remembered") {
    w.Insert(Probe("claude-code", kClaude));
    CHECK(w.size() == 0);
    CHECK_FALSE(w.Take(Probe("claude-code", kClaude)));
  }
  SECTION("bounded: the oldest are forgotten") {
    for (size_t i = 0; i < TwinWindow::kMaxEntries + 5; ++i) {
      w.Insert(Probe("cursor", R"({"cursor_version":"2","n":)" + std::to_string(i) + "}"));
    }
    CHECK(w.size() == TwinWindow::kMaxEntries);
    CHECK_FALSE(w.Take(Probe("claude-code", R"({"cursor_version":"2","n":0})")));
    CHECK(w.Take(Probe("claude-code", R"({"cursor_version":"2","n":5})")));
  }
}

TEST_CASE("A failure's message for status", "[sources]") {
  CHECK(store::FailureMessage(R"({"error":"Exit code 2\nmake: *** Error 1"})") == "Exit code 2");
  CHECK(store::FailureMessage(R"({"exit_status":1,"command":"grep x"})") == "exit 1: grep x");
  CHECK(store::FailureMessage(R"({"exit_code":127})") == "exit 127");
  CHECK(store::FailureMessage(R"("text")").empty());
  CHECK(store::FailureMessage(R"({"error":")" + std::string(300, 'x') + R"("})") ==
        std::string(200, 'x') + "...");
}

}  // namespace
}  // namespace ferry

TEST_CASE("LocalDayStart is local midnight, also on the days the clock changes", "[sources]") {
  // A POSIX rule (no zoneinfo file needed): CET, CEST from the last Sunday of March 02:00 to
  // the last Sunday of October 03:00.
  const char* old = std::getenv("TZ");
  const std::string saved = old ? old : "";
  ::setenv("TZ", "CET-1CEST,M3.5.0,M10.5.0/3", 1);
  ::tzset();
  constexpr int64_t kNs = 1'000'000'000;
  // 2026-06-15 12:00 CEST -> 2026-06-15 00:00 CEST (2026-06-14T22:00Z)
  CHECK(ferry::store::LocalDayStart(1781517600 * kNs + 123) == 1781474400 * kNs);
  // 2026-03-29 12:00 CEST (the day of 23 hours) -> 00:00 CET (2026-03-28T23:00Z)
  CHECK(ferry::store::LocalDayStart(1774778400 * kNs) == 1774738800 * kNs);
  // 2026-10-25 12:00 CET (the day of 25 hours) -> 00:00 CEST (2026-10-24T22:00Z)
  CHECK(ferry::store::LocalDayStart(1792926000 * kNs) == 1792879200 * kNs);
  // Midnight itself.
  CHECK(ferry::store::LocalDayStart(1781474400 * kNs) == 1781474400 * kNs);
  if (old) {
    ::setenv("TZ", saved.c_str(), 1);
  } else {
    ::unsetenv("TZ");
  }
  ::tzset();
}
