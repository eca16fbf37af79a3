#include "daemon/sink/spans.h"

#include <catch2/catch.hpp>

#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "proto/event.h"

namespace ferry {
namespace {

constexpr int64_t kReceived = 1764000000000000000;

struct SpanBatch {
  rapidjson::Document doc;
  std::vector<SinkEvent> events;
};

// `envelopes`: a JSON array of envelopes; seqs from first_seq, received 1 ms apart (or as
// each envelope's "_received" offset in ns, removed before planning).
SpanBatch MakeSpanBatch(std::string_view envelopes, uint64_t first_seq = 1) {
  SpanBatch b;
  proto::Error error;
  REQUIRE(proto::ParseJson(envelopes, &b.doc, &error));
  uint64_t seq = first_seq;
  for (auto& env : b.doc.GetArray()) {
    SinkEvent e;
    e.seq = seq;
    e.received_ns = kReceived + static_cast<int64_t>(seq) * 1000000;
    if (env.HasMember("_received")) {
      e.received_ns = kReceived + env["_received"].GetInt64();
      env.RemoveMember("_received");
    }
    ++seq;
    e.envelope = &env;
    b.events.push_back(e);
  }
  return b;
}

std::vector<ToolSpan> Plan(const SpanBatch& b, std::vector<PendingCall>* pending,
                           bool finish_all = false, SpanOptions o = {}) {
  std::vector<ToolSpan> spans;
  PlanSpans(o, b.events, finish_all, pending, &spans);
  return spans;
}

const char* kPre =
    R"({"id":"e1","ts":1000,"source":"claude-code","kind":"PreToolUse","session":"s1",
        "cwd":"/p","payload":{"tool_name":"Bash","tool_input":{"command":"make","description":"d"},
        "tool_use_id":"toolu_1"}})";
const char* kPost =
    R"({"id":"e2","ts":5000,"source":"claude-code","kind":"PostToolUse","session":"s1",
        "cwd":"/p","payload":{"tool_name":"Bash","tool_input":{"command":"make"},
        "tool_response":{"stdout":"ok","interrupted":false},"tool_use_id":"toolu_1"}})";

TEST_CASE("Sha256 and the span ids match the published vectors", "[sink_spans]") {
  auto hex = [](const std::string& d) {
    std::string out;
    for (char ch : d) {
      const auto c = static_cast<unsigned char>(ch);
      out += "0123456789abcdef"[c >> 4];
      out += "0123456789abcdef"[c & 15];
    }
    return out;
  };
  CHECK(hex(Sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex(Sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex(Sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex(Sha256(std::string(1000, 'x'))) ==
        "44f8354494a5ba03ba1792a8d3e9c534c47a9181980fde7a3f44b06ef2ae7c7f");
  // hashlib.sha256(b"ferry.trace\nclaude-code\ns1").hexdigest()[:32], and the span's [:16].
  CHECK(TraceId("claude-code", "s1") == "7e5b705137d663c58301b907b1960b63");
  CHECK(SpanId("claude-code", "s1", "call:toolu_1") == "6ba718fcbd31571f");
}

TEST_CASE("a pre and post tool event become one span", "[sink_spans]") {
  SpanBatch b = MakeSpanBatch(std::string("[") + kPre + "," + kPost + "]");
  std::vector<PendingCall> pending;
  auto spans = Plan(b, &pending);
  CHECK(pending.empty());
  REQUIRE(spans.size() == 1);
  const ToolSpan& s = spans[0];
  CHECK(s.event == 1);
  CHECK(s.trace_id == "7e5b705137d663c58301b907b1960b63");
  CHECK(s.span_id == "6ba718fcbd31571f");
  CHECK(s.parent_span_id.empty());
  CHECK(s.name == "Bash");
  CHECK((s.source == "claude-code" && s.session == "s1" && s.cwd == "/p"));
  CHECK(s.input == "make");
  CHECK(s.tool_use_id == "toolu_1");
  CHECK((s.start_ns == 1000 && s.end_ns == 5000));
  CHECK((s.start_seq == 1 && s.end_seq == 2));
  CHECK(s.outcome == "ok");
  CHECK(s.output_bytes ==
        static_cast<int64_t>(std::string(R"({"stdout":"ok","interrupted":false})").size()));
}

TEST_CASE("a call split over two batches survives the cursor file's JSON", "[sink_spans]") {
  SpanBatch one = MakeSpanBatch(std::string("[") + kPre + "]", 1);
  SpanBatch two = MakeSpanBatch(std::string("[") + kPost + "]", 2);
  std::vector<PendingCall> pending;
  CHECK(Plan(one, &pending).empty());
  REQUIRE(pending.size() == 1);
  const std::string json = PendingCallsToJson(pending);
  rapidjson::Document d;
  d.Parse(json.data(), json.size());
  std::vector<PendingCall> restored;
  REQUIRE(PendingCallsFromJson(d, &restored));
  CHECK(PendingCallsToJson(restored) == json);
  auto spans = Plan(two, &restored);
  CHECK(restored.empty());
  REQUIRE(spans.size() == 1);
  SpanBatch both = MakeSpanBatch(std::string("[") + kPre + "," + kPost + "]");
  std::vector<PendingCall> none;
  auto whole = Plan(both, &none);
  REQUIRE(whole.size() == 1);
  BatchMeta meta{"laptop", "h", "t", "0.1.0"};
  spans[0].event = whole[0].event;
  CHECK(EncodeOtlpTraces(meta, spans) == EncodeOtlpTraces(meta, whole));

  rapidjson::Document bad;
  bad.Parse(R"([{"seq":"x"}])");
  CHECK_FALSE(PendingCallsFromJson(bad, &restored));
  CHECK(restored.empty());
}

TEST_CASE("failures, interrupts and a post without its pre", "[sink_spans]") {
  SpanBatch b = MakeSpanBatch(R"([
    {"id":"a1","ts":10,"source":"claude-code","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"Bash","tool_input":{"command":"false"},"tool_use_id":"t1"}},
    {"id":"a2","ts":20,"source":"claude-code","kind":"PostToolUseFailure","session":"s",
     "payload":{"tool_name":"Bash","tool_use_id":"t1","error":"Exit code 1","is_interrupt":false}},
    {"id":"a3","ts":30,"source":"claude-code","kind":"PostToolUseFailure","session":"s",
     "payload":{"tool_name":"Bash","tool_use_id":"t2","error":"stop","is_interrupt":true}},
    {"id":"a4","ts":40,"source":"gemini","kind":"BeforeTool","session":"g",
     "payload":{"tool_name":"read_file","tool_input":{"file_path":"/x"}}},
    {"id":"a5","ts":45,"source":"gemini","kind":"AfterTool","session":"g",
     "payload":{"tool_name":"read_file","tool_input":{"file_path":"/x"},
                "tool_response":{"error":"no such file"}}}])");
  std::vector<PendingCall> pending;
  auto spans = Plan(b, &pending);
  REQUIRE(spans.size() == 3);
  CHECK((spans[0].outcome == "failed" && spans[0].status_message == "Exit code 1"));
  CHECK(spans[0].output_bytes == 11);
  CHECK((spans[1].outcome == "interrupted" && spans[1].status_message == "stop"));
  CHECK((spans[1].start_seq == 0 && spans[1].end_seq == 3 && spans[1].start_ns == 30));
  CHECK(spans[1].span_id == SpanId("claude-code", "s", "call:t2"));
  CHECK((spans[2].name == "read_file" && spans[2].outcome == "failed"));
  CHECK(spans[2].status_message == "no such file");
  CHECK(spans[2].span_id == SpanId("gemini", "g", "event:a4"));
  CHECK((spans[2].start_ns == 40 && spans[2].end_ns == 45 && spans[2].input == "/x"));
}

TEST_CASE("calls that never finish are sent as unfinished", "[sink_spans]") {
  SpanBatch b = MakeSpanBatch(R"([
    {"id":"b1","ts":10,"source":"codex","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"Bash","tool_input":{"command":"ls"}}},
    {"id":"b2","ts":20,"source":"codex","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"Bash","tool_input":{"command":"ls"}}},
    {"id":"b3","ts":30,"source":"codex","kind":"PreToolUse","session":"other",
     "payload":{"tool_name":"Read","tool_input":{"file_path":"/r"}}},
    {"id":"b4","ts":40,"source":"codex","kind":"SessionEnd","session":"s","payload":{}},
    {"id":"b5","ts":50,"source":"codex","kind":"Stop","session":"other","_received":7200000000000,
     "payload":{}}])");
  std::vector<PendingCall> pending;
  auto spans = Plan(b, &pending);
  REQUIRE(spans.size() == 3);
  // The second start of the same call key ends the first (tool_spans' rule).
  CHECK((spans[0].event == 1 && spans[0].start_seq == 1 && spans[0].outcome == "unfinished"));
  CHECK((spans[0].start_ns == 10 && spans[0].end_ns == 10 && spans[0].end_seq == 0));
  CHECK((spans[1].event == 3 && spans[1].start_seq == 2));  // the session's end
  CHECK((spans[2].event == 4 && spans[2].start_seq == 3));  // two hours later: span_timeout
  CHECK(pending.empty());

  SpanBatch more = MakeSpanBatch(R"([
    {"id":"c1","ts":10,"source":"codex","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"A","tool_input":1}},
    {"id":"c2","ts":10,"source":"codex","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"B","tool_input":2}},
    {"id":"c3","ts":10,"source":"codex","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"C","tool_input":3}}])");
  SpanOptions small;
  small.max_pending = 2;
  spans = Plan(more, &pending, false, small);
  REQUIRE(spans.size() == 1);
  CHECK((spans[0].name == "A" && spans[0].outcome == "unfinished" && spans[0].event == 2));
  REQUIRE(pending.size() == 2);
  spans = Plan(MakeSpanBatch("[]"), &pending, true);
  REQUIRE(spans.size() == 2);
  CHECK((spans[0].name == "B" && spans[1].name == "C"));
}

TEST_CASE("shell commands and subagent calls", "[sink_spans]") {
  SpanBatch b = MakeSpanBatch(R"([
    {"id":"d1","ts":9000,"source":"bash","kind":"command","session":"sh",
     "payload":{"command":"make -j","exit_status":2,"duration_ns":4000}},
    {"id":"d2","ts":100,"source":"claude-code","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"Task","tool_input":{"subagent_type":"Explore","description":"find"},
                "tool_use_id":"task1"}},
    {"id":"d3","ts":200,"source":"claude-code","kind":"PreToolUse","session":"s",
     "payload":{"tool_name":"Grep","tool_input":{"pattern":"x"},"tool_use_id":"g1",
                "agent_id":"a7","agent_type":"Explore"}},
    {"id":"d4","ts":300,"source":"claude-code","kind":"PostToolUse","session":"s",
     "payload":{"tool_name":"Grep","tool_response":"hit","tool_use_id":"g1",
                "agent_id":"a7","agent_type":"Explore"}}])");
  std::vector<PendingCall> pending;
  auto spans = Plan(b, &pending);
  REQUIRE(spans.size() == 2);
  CHECK((spans[0].name == "shell" && spans[0].shell && spans[0].input == "make -j"));
  CHECK((spans[0].start_ns == 5000 && spans[0].end_ns == 9000));
  CHECK((spans[0].has_exit_status && spans[0].exit_status == 2 && spans[0].outcome == "failed"));
  CHECK(spans[0].status_message == "exit status 2");
  CHECK((spans[1].name == "Grep" && spans[1].agent_id == "a7"));
  CHECK(spans[1].parent_span_id == SpanId("claude-code", "s", "call:task1"));
  CHECK((spans[1].output_bytes == 3 && spans[1].input == "x"));
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].tool == "Task");
}

TEST_CASE("EncodeOtlpTraces writes the documented span", "[sink_spans]") {
  ToolSpan s;
  s.trace_id = "7e5b705137d663c58301b907b1960b63";
  s.span_id = "6ba718fcbd31571f";
  s.parent_span_id = "0123456789abcdef";
  s.name = "Bash";
  s.source = "claude-code";
  s.session = "s1";
  s.cwd = "/p";
  s.input = "make";
  s.tool_use_id = "toolu_1";
  s.start_ns = 1000;
  s.end_ns = 5000;
  s.outcome = "failed";
  s.status_message = "Exit code 2";
  s.start_seq = 1;
  s.end_seq = 2;
  s.output_bytes = 11;
  BatchMeta meta{"laptop", "4c1f", "t", "0.1.0"};
  const std::string sv = R"({"key":"service.version","value":{"stringValue":"0.1.0"}})";
  CHECK(EncodeOtlpTraces(meta, std::span<const ToolSpan>(&s, 1)) ==
        R"({"resourceSpans":[{"resource":{"attributes":[)"
        R"({"key":"service.name","value":{"stringValue":"ferry"}},)" +
            sv +
            R"(,{"key":"host.name","value":{"stringValue":"laptop"}},)"
            R"({"key":"host.id","value":{"stringValue":"4c1f"}}]},)"
            R"("scopeSpans":[{"scope":{"name":"ferry","version":"0.1.0"},"spans":[{)"
            R"("traceId":"7e5b705137d663c58301b907b1960b63","spanId":"6ba718fcbd31571f",)"
            R"("parentSpanId":"0123456789abcdef","name":"Bash","kind":1,)"
            R"("startTimeUnixNano":"1000","endTimeUnixNano":"5000","attributes":[)"
            R"({"key":"ferry.source","value":{"stringValue":"claude-code"}},)"
            R"({"key":"session.id","value":{"stringValue":"s1"}},)"
            R"({"key":"ferry.cwd","value":{"stringValue":"/p"}},)"
            R"({"key":"gen_ai.operation.name","value":{"stringValue":"execute_tool"}},)"
            R"({"key":"gen_ai.tool.name","value":{"stringValue":"Bash"}},)"
            R"({"key":"gen_ai.tool.call.id","value":{"stringValue":"toolu_1"}},)"
            R"({"key":"ferry.input","value":{"stringValue":"make"}},)"
            R"({"key":"ferry.outcome","value":{"stringValue":"failed"}},)"
            R"({"key":"ferry.output_bytes","value":{"intValue":"11"}},)"
            R"({"key":"ferry.start_seq","value":{"intValue":"1"}},)"
            R"({"key":"ferry.end_seq","value":{"intValue":"2"}}],)"
            R"("status":{"code":2,"message":"Exit code 2"}}]}]}]})");
  s.outcome = "unfinished";
  s.parent_span_id.clear();
  const std::string unfinished = EncodeOtlpTraces(meta, std::span<const ToolSpan>(&s, 1));
  CHECK(unfinished.find(
            R"({"key":"ferry.unfinished","value":{"boolValue":true}}],"status":{"code":0}})") !=
        std::string::npos);
  CHECK(unfinished.find("parentSpanId") == std::string::npos);
}

}  // namespace
}  // namespace ferry
