#include "daemon/sink/encode.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "proto/event.h"

namespace ferry {
namespace {

using namespace std::string_literals;

// A batch's envelopes live in one document, as the sink keeps them.
struct Batch {
  rapidjson::Document doc;
  std::vector<SinkEvent> events;
};

// `envelopes` is a JSON array of envelope objects; seqs start at `first_seq`, one apart.
Batch MakeBatch(std::string_view envelopes, uint64_t first_seq = 101) {
  Batch b;
  proto::Error error;
  REQUIRE(proto::ParseJson(envelopes, &b.doc, &error));
  REQUIRE(b.doc.IsArray());
  uint64_t seq = first_seq;
  for (const auto& env : b.doc.GetArray()) {
    SinkEvent e;
    e.seq = seq++;
    e.received_ns = 1764000000123456789 + static_cast<int64_t>(e.seq);
    e.envelope = &env;
    e.approx_bytes = 200;
    b.events.push_back(e);
  }
  return b;
}

BatchMeta Meta() {
  BatchMeta m;
  m.host = "laptop";
  m.host_id = "4c1f00112233445566778899aabbccdd";
  m.sink = "central";
  m.version = "0.1.0";
  return m;
}

rapidjson::Document Parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  INFO(text);
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

std::string Str(const rapidjson::Value& v) {
  REQUIRE(v.IsString());
  return std::string(v.GetString(), v.GetStringLength());
}

bool IsDigits(const rapidjson::Value& v) {
  if (!v.IsString() || v.GetStringLength() == 0) return false;
  for (const char c : std::string_view(v.GetString(), v.GetStringLength())) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

const char* kThreeEvents = R"([
  {"id":"00112233445566778899aabbccddeeff","ts":1764000000120000000,"source":"claude-code",
   "kind":"PreToolUse","session":"abc","cwd":"/home/u/p","host":"laptop","pid":4242,
   "payload":{"tool_name":"Bash","tool_input":{"command":"ls"}}},
  {"id":"11112233445566778899aabbccddeeff","ts":1764000000130000000,"source":"zsh",
   "kind":"command","truncated":true,"orig_size":99999,"payload_encoding":"text",
   "payload":"nul:\u0000:end \u00e9\u4e2d\ud83d\ude00"},
  {"id":"22222233445566778899aabbccddeeff","ts":1764000000140000000,"source":"bash",
   "kind":"command"}
])";

TEST_CASE("http-json: every field, in seq order, envelopes passed through", "[sink_encode]") {
  Batch b = MakeBatch(kThreeEvents);
  const std::string body = EncodeHttpJson(Meta(), b.events);
  rapidjson::Document doc = Parse(body);
  REQUIRE(doc.IsObject());
  CHECK(Str(doc["format"]) == "ferry.batch.v1");
  CHECK(Str(doc["host"]) == "laptop");
  CHECK(Str(doc["host_id"]) == "4c1f00112233445566778899aabbccdd");
  CHECK(Str(doc["sink"]) == "central");
  CHECK(doc["first_seq"].GetUint64() == 101);
  CHECK(doc["last_seq"].GetUint64() == 103);
  CHECK(doc["count"].GetUint64() == 3);
  CHECK(doc.MemberCount() == 8);
  const auto& events = doc["events"];
  REQUIRE(events.Size() == 3);
  for (rapidjson::SizeType i = 0; i < 3; ++i) {
    const auto& e = events[i];
    // seq and received first, then the envelope's keys as they were.
    auto it = e.MemberBegin();
    CHECK(std::string(it->name.GetString()) == "seq");
    CHECK(it->value.GetUint64() == 101 + i);
    ++it;
    CHECK(std::string(it->name.GetString()) == "received");
    CHECK(it->value.IsInt64());
    CHECK(it->value.GetInt64() == 1764000000123456789 + 101 + i);
    ++it;
    const auto& env = b.doc[i];
    CHECK(e.MemberCount() == env.MemberCount() + 2);
    for (auto m = env.MemberBegin(); m != env.MemberEnd(); ++m, ++it) {
      REQUIRE(it != e.MemberEnd());
      CHECK(it->name == m->name);
      CHECK(it->value == m->value);
    }
  }
  CHECK(Str(events[0]["payload"]["tool_input"]["command"]) == "ls");
  CHECK(events[0]["pid"].GetInt() == 4242);
  CHECK(events[1]["truncated"].GetBool());
  CHECK(events[1]["orig_size"].GetUint64() == 99999);
  CHECK(Str(events[1]["payload_encoding"]) == "text");
  // The NUL and the multi-byte characters survive.
  CHECK(Str(events[1]["payload"]) == "nul:\0:end \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"s);
  CHECK(body.find("\\u0000") != std::string::npos);
  CHECK_FALSE(events[2].HasMember("payload"));
}

TEST_CASE("http-json: seq gaps and a single event", "[sink_encode]") {
  Batch b = MakeBatch(kThreeEvents, 7);
  b.events[1].seq = 20;
  b.events[2].seq = 31;
  rapidjson::Document doc = Parse(EncodeHttpJson(Meta(), b.events));
  CHECK(doc["first_seq"].GetUint64() == 7);
  CHECK(doc["last_seq"].GetUint64() == 31);
  CHECK(doc["events"][1]["seq"].GetUint64() == 20);

  std::vector<SinkEvent> one = {b.events[2]};
  rapidjson::Document single = Parse(EncodeHttpJson(Meta(), one));
  CHECK(single["first_seq"].GetUint64() == 31);
  CHECK(single["last_seq"].GetUint64() == 31);
  CHECK(single["count"].GetUint64() == 1);
}

// The value of the attribute named `key` in an OTLP key/value array, or null.
const rapidjson::Value* Attr(const rapidjson::Value& attrs, std::string_view key) {
  for (const auto& a : attrs.GetArray()) {
    if (Str(a["key"]) == key) return &a["value"];
  }
  return nullptr;
}

TEST_CASE("OTLP: structure, types and attributes", "[sink_encode]") {
  Batch b = MakeBatch(kThreeEvents);
  rapidjson::Document doc = Parse(EncodeOtlpJson(Meta(), b.events));
  REQUIRE(doc["resourceLogs"].Size() == 1);
  const auto& rl = doc["resourceLogs"][0];
  const auto& res = rl["resource"]["attributes"];
  CHECK(Str((*Attr(res, "service.name"))["stringValue"]) == "ferry");
  CHECK(Str((*Attr(res, "service.version"))["stringValue"]) == "0.1.0");
  CHECK(Str((*Attr(res, "host.name"))["stringValue"]) == "laptop");
  CHECK(Str((*Attr(res, "host.id"))["stringValue"]) == "4c1f00112233445566778899aabbccdd");
  REQUIRE(rl["scopeLogs"].Size() == 1);
  const auto& sl = rl["scopeLogs"][0];
  CHECK(Str(sl["scope"]["name"]) == "ferry");
  CHECK(Str(sl["scope"]["version"]) == "0.1.0");
  const auto& records = sl["logRecords"];
  REQUIRE(records.Size() == 3);

  const auto& r0 = records[0];
  CHECK(IsDigits(r0["timeUnixNano"]));
  CHECK(Str(r0["timeUnixNano"]) == "1764000000120000000");
  CHECK(Str(r0["observedTimeUnixNano"]) == "1764000000123456890");
  CHECK(r0["severityNumber"].IsInt());
  CHECK(r0["severityNumber"].GetInt() == 9);
  CHECK(Str(r0["severityText"]) == "INFO");
  const auto& a0 = r0["attributes"];
  CHECK(Str((*Attr(a0, "ferry.source"))["stringValue"]) == "claude-code");
  CHECK(Str((*Attr(a0, "ferry.kind"))["stringValue"]) == "PreToolUse");
  CHECK(Str((*Attr(a0, "ferry.session"))["stringValue"]) == "abc");
  CHECK(Str((*Attr(a0, "ferry.cwd"))["stringValue"]) == "/home/u/p");
  CHECK(Str((*Attr(a0, "ferry.host"))["stringValue"]) == "laptop");
  CHECK(Str((*Attr(a0, "ferry.id"))["stringValue"]) == "00112233445566778899aabbccddeeff");
  CHECK(Str((*Attr(a0, "ferry.seq"))["intValue"]) == "101");
  CHECK(Str((*Attr(a0, "ferry.pid"))["intValue"]) == "4242");
  CHECK(Attr(a0, "ferry.truncated") == nullptr);
  CHECK(a0.Size() == 8);
  // body: {"tool_name":"Bash","tool_input":{"command":"ls"}}
  const auto& kv = r0["body"]["kvlistValue"]["values"];
  REQUIRE(kv.Size() == 2);
  CHECK(Str(kv[0]["key"]) == "tool_name");
  CHECK(Str(kv[0]["value"]["stringValue"]) == "Bash");
  CHECK(Str(kv[1]["key"]) == "tool_input");
  CHECK(Str(kv[1]["value"]["kvlistValue"]["values"][0]["value"]["stringValue"]) == "ls");

  const auto& a1 = records[1]["attributes"];
  CHECK(Attr(a1, "ferry.session") == nullptr);
  CHECK(Attr(a1, "ferry.cwd") == nullptr);
  CHECK(Attr(a1, "ferry.host") == nullptr);
  CHECK(Attr(a1, "ferry.pid") == nullptr);
  REQUIRE(Attr(a1, "ferry.truncated") != nullptr);
  CHECK((*Attr(a1, "ferry.truncated"))["boolValue"].GetBool());
  CHECK(Str(records[1]["body"]["stringValue"]) ==
        "nul:\0:end \xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80"s);

  const auto& a2 = records[2]["attributes"];
  CHECK(a2.Size() == 4);  // source, kind, id, seq
  CHECK_FALSE(records[2].HasMember("body"));
}

TEST_CASE("OTLP: AnyValue mapping of every JSON type", "[sink_encode]") {
  Batch b = MakeBatch(R"([{"id":"a","ts":5,"source":"s","kind":"k","payload":
      {"obj":{"x":[1,-2,2.5,true,false,null,"s",[],{}]},
       "big":18446744073709551615,"min":-9223372036854775808,"d":1e300}}])");
  rapidjson::Document doc = Parse(EncodeOtlpJson(Meta(), b.events));
  const auto& r = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"][0];
  CHECK(Str(r["timeUnixNano"]) == "5");
  const auto& body = r["body"]["kvlistValue"]["values"];
  REQUIRE(body.Size() == 4);
  const auto& x = body[0]["value"]["kvlistValue"]["values"][0];
  CHECK(Str(x["key"]) == "x");
  const auto& arr = x["value"]["arrayValue"]["values"];
  REQUIRE(arr.Size() == 9);
  CHECK(Str(arr[0]["intValue"]) == "1");
  CHECK(Str(arr[1]["intValue"]) == "-2");
  CHECK(arr[2]["doubleValue"].GetDouble() == 2.5);
  CHECK(arr[3]["boolValue"].GetBool() == true);
  CHECK(arr[4]["boolValue"].GetBool() == false);
  CHECK(arr[5].IsObject());
  CHECK(arr[5].MemberCount() == 0);
  CHECK(Str(arr[6]["stringValue"]) == "s");
  CHECK(arr[7]["arrayValue"]["values"].Size() == 0);
  CHECK(arr[8]["kvlistValue"]["values"].Size() == 0);
  // Above INT64_MAX: the exact digits as a stringValue.
  CHECK(Str(body[1]["value"]["stringValue"]) == "18446744073709551615");
  CHECK(Str(body[2]["value"]["intValue"]) == "-9223372036854775808");
  CHECK(body[3]["value"]["doubleValue"].GetDouble() == 1e300);
}

TEST_CASE("OTLP: a missing or odd ts falls back to received", "[sink_encode]") {
  Batch b = MakeBatch(R"([{"id":"a","source":"s","kind":"k"},
                          {"id":"b","ts":-1,"source":"s","kind":"k"}])");
  rapidjson::Document doc = Parse(EncodeOtlpJson(Meta(), b.events));
  const auto& records = doc["resourceLogs"][0]["scopeLogs"][0]["logRecords"];
  CHECK(Str(records[0]["timeUnixNano"]) == "1764000000123456890");
  CHECK(Str(records[1]["timeUnixNano"]) == "1764000000123456891");
}

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

TEST_CASE("gzip round trip", "[sink_encode]") {
  std::string compressible;
  while (compressible.size() < (1u << 20)) {
    compressible += R"({"seq":12345,"kind":"PreToolUse","payload":{"command":"ls -la"}},)";
  }
  const std::vector<std::string> inputs = {"", "x", RandomBytes(1 << 20, 1), compressible};
  for (const std::string& in : inputs) {
    std::string z;
    REQUIRE(Gzip(in, &z));
    REQUIRE(z.size() >= 18);  // header + trailer
    CHECK(static_cast<unsigned char>(z[0]) == 0x1f);
    CHECK(static_cast<unsigned char>(z[1]) == 0x8b);
    std::string back;
    REQUIRE(Gunzip(z, &back));
    CHECK(back == in);
  }
  std::string z;
  REQUIRE(Gzip(compressible, &z));
  CHECK(z.size() < compressible.size() / 10);
  // Level 1 and 9 decode the same.
  for (int level : {1, 9}) {
    REQUIRE(Gzip(compressible, &z, level));
    std::string back;
    REQUIRE(Gunzip(z, &back));
    CHECK(back == compressible);
  }
}

TEST_CASE("gunzip refuses garbage, a cut stream and trailing bytes", "[sink_encode]") {
  std::string out;
  CHECK_FALSE(Gunzip("", &out));
  CHECK_FALSE(Gunzip("not gzip at all", &out));
  CHECK_FALSE(Gunzip(RandomBytes(4096, 2), &out));
  std::string z;
  REQUIRE(Gzip("hello, hello, hello", &z));
  CHECK_FALSE(Gunzip(std::string_view(z).substr(0, z.size() - 3), &out));
  CHECK_FALSE(Gunzip(z + "junk", &out));
  std::string corrupt = z;
  corrupt[z.size() - 6] = static_cast<char>(corrupt[z.size() - 6] ^ 0x55);  // CRC
  CHECK_FALSE(Gunzip(corrupt, &out));
}

TEST_CASE("IdempotencyKey is deterministic and sanitized", "[sink_encode]") {
  CHECK(IdempotencyKey("central", "4c1f", 101, 103) == "ferry-central-4c1f-101-103");
  CHECK(IdempotencyKey("central", "4c1f", 101, 103) == IdempotencyKey("central", "4c1f", 101, 103));
  CHECK(IdempotencyKey("central", "4c1f", 101, 102) != IdempotencyKey("central", "4c1f", 101, 103));
  CHECK(IdempotencyKey("central", "4c1f", 5, 5, "replay") == "ferry-central-4c1f-5-5-replay");
  CHECK(IdempotencyKey("a b/c\xc3\xa9", "h:1", 1, 18446744073709551615ull) ==
        "ferry-a_b_c__-h_1-1-18446744073709551615");
}

TEST_CASE("HostIdentity is stable and 32 hex digits; HostName is set", "[sink_encode]") {
  const std::string a = HostIdentity();
  const std::string b = HostIdentity();
  CHECK(a == b);
  REQUIRE(a.size() == 32);
  for (const char c : a) CHECK(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
  CHECK_FALSE(HostName().empty());
  CHECK(proto::FirstInvalidUtf8(HostName()) == std::string::npos);
}

TEST_CASE("UrlForDisplay masks credentials", "[sink_encode]") {
  CHECK(UrlForDisplay("https://logs.example.com/ferry") == "https://logs.example.com/ferry");
  CHECK(UrlForDisplay("https://user:pa%40ss@logs.example.com:8443/ferry?x=1") ==
        "https://logs.example.com:8443/ferry?x=1");
  CHECK(UrlForDisplay("https://u@h/p") == "https://h/p");
  CHECK(UrlForDisplay("http://h/p?token=abc&x=1&api_key=zz&sig=q&Password=p") ==
        "http://h/p?token=REDACTED&x=1&api_key=REDACTED&sig=REDACTED&Password=REDACTED");
  CHECK(UrlForDisplay("http://h?access_token=abc") == "http://h?access_token=REDACTED");
  CHECK(UrlForDisplay("http://h/p?x=1#access_token=abc") == "http://h/p?x=1#access_token=REDACTED");
  CHECK(UrlForDisplay("http://h/p@x?q=1") == "http://h/p@x?q=1");  // '@' in the path stays
  CHECK(UrlForDisplay("http://h/p?flag&auth") == "http://h/p?flag&auth");
}

// Not a test: how fast the encoders and gzip are. Run with
//   build/release/tests/unit_tests "[.bench]" -s
TEST_CASE("encode + gzip throughput", "[.bench][sink_encode_bench]") {
  // 1000 events of about 500 bytes each, as the journal holds them.
  std::string json = "[";
  std::mt19937 rng(7);
  for (int i = 0; i < 1000; ++i) {
    char id[33];
    std::snprintf(id, sizeof id, "%032x", static_cast<unsigned>(rng()));
    json += i ? "," : "";
    json += R"({"id":")" + std::string(id) +
            R"(","ts":1764000000120000000,"source":"claude-code","kind":"PreToolUse",)"
            R"("session":"0b7c3d2e-4f5a-6b7c-8d9e-0f1a2b3c4d5e","cwd":"/home/user/src/project",)"
            R"("host":"laptop","pid":)" +
            std::to_string(4000 + i % 50) +
            R"(,"payload":{"tool_name":"Bash","tool_input":{"command":"grep -rn 'TODO' src/ | )"
            R"(head -n )" +
            std::to_string(rng() % 1000) +
            R"(","description":"Find TODO markers in the source tree"},"hook_event_name":)"
            R"("PreToolUse","transcript_path":"/home/user/.claude/projects/p/)" +
            std::to_string(rng()) + R"(.jsonl","permission_mode":"default","n":)" +
            std::to_string(i) + "}}";
  }
  json += "]";
  Batch b = MakeBatch(json);
  const std::string sample = EncodeHttpJson(Meta(), std::vector<SinkEvent>{b.events[0]});
  for (auto& e : b.events) e.approx_bytes = 500;
  // Per-batch times, median of 50 (the cores are shared: the median is steadier than a mean).
  using BenchClock = std::chrono::steady_clock;
  auto median_s = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  auto run = [&](const char* name, auto encode) {
    std::vector<double> enc_s;
    std::vector<double> gz_s;
    size_t raw = 0;
    size_t zipped = 0;
    for (int i = 0; i < 50; ++i) {
      const auto t0 = BenchClock::now();
      const std::string body = encode(Meta(), b.events);
      const auto t1 = BenchClock::now();
      std::string z;
      REQUIRE(Gzip(body, &z));
      const auto t2 = BenchClock::now();
      enc_s.push_back(std::chrono::duration<double>(t1 - t0).count());
      gz_s.push_back(std::chrono::duration<double>(t2 - t1).count());
      raw = body.size();
      zipped = z.size();
    }
    const double enc = median_s(enc_s);
    const double gz = median_s(gz_s);
    std::printf(
        "%-9s encode %6.2f ms, gzip %6.2f ms per 1000 events: %7.0f events/s encode+gzip, "
        "%7.0f encode only (%zu B -> %zu B)\n",
        name, enc * 1e3, gz * 1e3, 1000 / (enc + gz), 1000 / enc, raw, zipped);
  };
  std::printf("one event, http-json: %zu bytes\n", sample.size());
  run("http-json", EncodeHttpJson);
  run("otlp", EncodeOtlpJson);
}

}  // namespace
}  // namespace ferry
