#include "proto/event.h"
#include <cstring>
#include <memory>

#include <rapidjson/error/en.h>
#include <catch2/catch.hpp>
#include <cmath>

#include <random>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::proto {
namespace {

// An envelope as (name, raw JSON value) pairs, kept in the order given so tests control
// the order fields appear in.
using Fields = std::vector<std::pair<std::string, std::string>>;

Fields ValidFields() {
  return {{"id", R"("00112233445566778899aabbccddeeff")"},
          {"ts", "1700000000000000000"},
          {"source", R"("zsh")"},
          {"kind", R"("command")"}};
}

Fields With(Fields f, const std::string& name, const std::string& raw) {
  for (auto& [n, v] : f) {
    if (n == name) {
      v = raw;
      return f;
    }
  }
  f.emplace_back(name, raw);
  return f;
}

Fields Without(Fields f, const std::string& name) {
  Fields out;
  for (auto& field : f) {
    if (field.first != name) out.push_back(field);
  }
  return out;
}

std::string ToJson(const Fields& f) {
  std::string s = "{";
  for (const auto& [name, raw] : f) {
    if (s.size() > 1) s += ',';
    s += '"' + name + "\":" + raw;
  }
  return s + "}";
}

std::string Quoted(const std::string& s) { return '"' + s + '"'; }

// Parses `json` (which must be valid JSON) and validates it as an envelope.
Error Validate(const std::string& json, std::string_view where = "event") {
  rapidjson::Document doc;
  Error error;
  INFO(json);
  REQUIRE(ParseJson(json, &doc, &error));
  const bool ok = ValidateEnvelope(doc, where, &error);
  CHECK(ok == error.ok());
  return error;
}

Error ParseError(std::string_view text) {
  rapidjson::Document doc;
  Error error;
  CHECK_FALSE(ParseJson(text, &doc, &error));
  return error;
}

std::string Canonical(const std::string& json) {
  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(json, &doc, &error));
  REQUIRE(ValidateEnvelope(doc, "event", &error));
  rapidjson::StringBuffer sb;
  JsonWriter writer(sb);
  WriteEnvelope(doc, writer);
  return std::string(sb.GetString(), sb.GetSize());
}

std::string Nested(int depth) {
  return std::string(static_cast<size_t>(depth), '[') +
         std::string(static_cast<size_t>(depth), ']');
}

}  // namespace

TEST_CASE("ParseJson accepts any JSON value", "[event][json]") {
  for (std::string text :
       {"{}", "[]", "1", "-1.5e3", "\"x\"", "null", "true", " { \"a\" : [1, {}] } \n",
        R"("\u00e9\ud83d\ude00")", "\"\xc3\xa9\xf0\x9f\x98\x80\""}) {
    rapidjson::Document doc;
    Error error;
    INFO(text);
    CHECK(ParseJson(text, &doc, &error));
    CHECK(error.ok());
  }
}

TEST_CASE("ParseJson refuses malformed JSON with the offset and reason", "[event][json]") {
  CHECK(ParseError("").message == "invalid JSON at byte 0: The document is empty.");
  CHECK(ParseError("   ").message == "invalid JSON at byte 3: The document is empty.");
  CHECK(ParseError("[1,]").message == "invalid JSON at byte 3: Invalid value.");
  CHECK(ParseError("{\"a\"}").message ==
        "invalid JSON at byte 4: Missing a colon after a name of object member.");
  CHECK(ParseError("{\"a\":1").message ==
        "invalid JSON at byte 6: Missing a comma or '}' after an object member.");
  CHECK(ParseError("NaN").code == Errc::kBadJson);
  CHECK(ParseError("1e400").message ==
        "invalid JSON at byte 0: Number too big to be stored in double.");
}

TEST_CASE("ParseJson refuses trailing garbage", "[event][json]") {
  const Error e = ParseError("{} x");
  CHECK(e.code == Errc::kBadJson);
  CHECK(e.message ==
        "invalid JSON at byte 3: The document root must not be followed by other values.");
  CHECK(ParseError("{}{}").message ==
        "invalid JSON at byte 2: The document root must not be followed by other values.");
  CHECK(ParseError("1 2").message ==
        "invalid JSON at byte 2: The document root must not be followed by other values.");
  // A NUL byte is not the end of the input (rapidjson's streams treat it so).
  CHECK(ParseError(std::string("{}\0", 3)).message ==
        "invalid JSON at byte 2: The document root must not be followed by other values.");
  CHECK(ParseError(std::string("{} \0junk", 8)).message ==
        "invalid JSON at byte 3: The document root must not be followed by other values.");
  CHECK(ParseError(std::string("{\"a\":\0}", 7)).code == Errc::kBadJson);
}

TEST_CASE("ParseJson refuses invalid UTF-8", "[event][json]") {
  struct Case {
    std::string text;  // the inside of a JSON string
    size_t bad_at;     // offset of the first byte of the bad sequence in `text`
  };
  const Case c = GENERATE(values<Case>({
      {"\xff", 0},                 // never valid
      {"\xc0\xaf", 0},             // overlong '/'
      {"\xe2\x82", 0},             // truncated 3-byte sequence
      {"\xed\xa0\x80", 0},         // UTF-16 surrogate encoded in UTF-8
      {"\xf4\x90\x80\x80", 0},     // above U+10FFFF
      {"ok\x80", 2},               // lone continuation byte
      {"caf\xc3\xa9 caf\xe9", 9},  // Latin-1 after valid UTF-8
  }));
  CAPTURE(c.text);
  const Error e = ParseError('"' + c.text + '"');
  CHECK(e.code == Errc::kBadJson);
  CHECK(e.message ==
        "invalid JSON at byte " + std::to_string(1 + c.bad_at) + ": Invalid encoding in string.");
  // Also in a key and deep inside an envelope payload.
  CHECK(ParseError("{\"" + c.text + "\":1}").message ==
        "invalid JSON at byte " + std::to_string(2 + c.bad_at) + ": Invalid encoding in string.");
  CHECK(ParseError(R"({"payload":[")" + c.text + "\"]}").message ==
        "invalid JSON at byte " + std::to_string(13 + c.bad_at) + ": Invalid encoding in string.");
}

TEST_CASE("ParseJson refuses a lone surrogate escape", "[event][json]") {
  CHECK(ParseError(R"("\ud800")").message ==
        "invalid JSON at byte 1: The surrogate pair in string is invalid.");
  CHECK(ParseError(R"("\ud800\u0041")").code == Errc::kBadJson);
  // rapidjson itself lets a lone low surrogate through as the non-UTF-8 bytes ED B0 80.
  Error e = ParseError(R"("\udc00")");
  CHECK(e.code == Errc::kBadJson);
  CHECK(e.message == "invalid JSON at byte 8: a \\u escape encodes a lone UTF-16 surrogate");
  e = ParseError(R"({"payload":{"k\udfff":1}})");
  CHECK(e.message == "invalid JSON at byte 21: a \\u escape encodes a lone UTF-16 surrogate");
  // Upper case, after other escapes (the parser looks for the escape before it checks strings).
  e = ParseError(R"({"a":"x\n\"\\","b":"\uDC00"})");
  CHECK(e.message == "invalid JSON at byte 27: a \\u escape encodes a lone UTF-16 surrogate");
  // A proper pair, and the characters just below and above the surrogate range, are fine.
  rapidjson::Document doc;
  Error ok;
  CHECK(ParseJson(R"("\ud83d\ude00 \ud7ff \ue000 \u00ed")", &doc, &ok));
  CHECK(ParseJson("\"\xed\x9f\xbf \xee\x80\x80\"", &doc, &ok));
}

TEST_CASE("ParseJson nesting limit", "[event][json]") {
  rapidjson::Document doc;
  Error error;
  CHECK(ParseJson(Nested(kMaxJsonDepth), &doc, &error));
  CHECK(error.ok());

  SECTION("one level more is refused") {
    const Error e = ParseError(Nested(kMaxJsonDepth + 1));
    CHECK(e.code == Errc::kBadJson);
    CHECK(e.message == "JSON nested deeper than 256 levels at byte 256");
  }
  SECTION("objects count as levels too") {
    std::string text;
    for (int i = 0; i <= kMaxJsonDepth; ++i) text += "{\"a\":";
    text += "1";
    for (int i = 0; i <= kMaxJsonDepth; ++i) text += "}";
    const Error e = ParseError(text);
    CHECK(e.message == "JSON nested deeper than 256 levels at byte 1280");
  }
  SECTION("mixed arrays and objects at exactly the limit are fine") {
    std::string text;
    for (int i = 0; i < kMaxJsonDepth / 2; ++i) text += "[{\"k\":";
    text += "0";
    for (int i = 0; i < kMaxJsonDepth / 2; ++i) text += "}]";
    CHECK(ParseJson(text, &doc, &error));
  }
  SECTION("1 MiB of '[' is refused without recursion") {
    const Error e = ParseError(std::string(1u << 20, '['));
    CHECK(e.code == Errc::kBadJson);
    CHECK(e.message == "JSON nested deeper than 256 levels at byte 256");
  }
  SECTION("1 MiB of '{\"a\":' is refused") {
    std::string text;
    while (text.size() < (1u << 20)) text += "{\"a\":";
    CHECK(ParseError(text).code == Errc::kBadJson);
  }
  SECTION("the limit holds after unwinding: depth is current, not total") {
    std::string text = "[";
    for (int i = 0; i < 100; ++i) text += Nested(kMaxJsonDepth - 1) + ",";
    text += "0]";
    CHECK(ParseJson(text, &doc, &error));
  }
}

TEST_CASE("a valid envelope validates", "[event]") {
  CHECK(Validate(ToJson(ValidFields())).ok());
  // Every optional field, in a non-canonical order.
  const Fields full = {
      {"payload", R"({"tool":"Bash","input":{"command":"ls -la"},"n":[1,2.5,null]})"},
      {"pid", "4242"},
      {"host", R"("box")"},
      {"cwd", R"("/home/u/src")"},
      {"session", R"("s-1")"},
      {"kind", R"("PreToolUse")"},
      {"source", R"("claude-code")"},
      {"ts", "0"},
      {"truncated", "true"},
      {"orig_size", "18446744073709551615"},
      {"payload_encoding", R"("text")"},
      {"id", R"("0190A0B1-C2D3-7E4F-8a9b-0c1d2e3f4a5b")"}};
  CHECK(Validate(ToJson(full)).ok());
  // Optional strings may be empty; payload may be any value.
  CHECK(Validate(ToJson(With(With(With(ValidFields(), "session", R"("")"), "cwd", R"("")"), "host",
                             R"("")")))
            .ok());
  for (const char* payload : {"null", "0", "\"s\"", "[]", "{}", "false", "-1.25"}) {
    CHECK(Validate(ToJson(With(ValidFields(), "payload", payload))).ok());
  }
}

TEST_CASE("payload_encoding other than \"text\" is refused", "[event]") {
  const Error e = Validate(ToJson(With(ValidFields(), "payload_encoding", R"("base64")")));
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "event.payload_encoding must be \"text\"");
}

TEST_CASE("each required field missing", "[event]") {
  const std::string field = GENERATE(as<std::string>{}, "id", "ts", "source", "kind");
  const Error e = Validate(ToJson(Without(ValidFields(), field)));
  CHECK(e.code == Errc::kMissingField);
  CHECK(std::string(ErrcName(e.code)) == "missing_field");
  CHECK(e.message == "event." + field + " is required");
  // `where` prefixes the field.
  CHECK(Validate(ToJson(Without(ValidFields(), field)), "events[7]").message ==
        "events[7]." + field + " is required");
}

TEST_CASE("an empty object reports the first required field", "[event]") {
  const Error e = Validate("{}");
  CHECK(e.code == Errc::kMissingField);
  CHECK(e.message == "event.id is required");
}

TEST_CASE("a non-object envelope is refused", "[event]") {
  for (const char* json : {"[]", "1", "\"x\"", "null", "true"}) {
    const Error e = Validate(json, "events[2]");
    CHECK(e.code == Errc::kNotObject);
    CHECK(e.message == "events[2] must be an object");
  }
}

TEST_CASE("fields of the wrong type", "[event]") {
  struct Case {
    std::string field;
    std::string raw;
    std::string message;
  };
  const std::string kTs = " must be a non-negative integer (ns since the epoch)";
  const Case c = GENERATE_COPY(values<Case>({
      {"id", "5", "event.id must be a string"},
      {"id", "null", "event.id must be a string"},
      {"id", R"(["ab"])", "event.id must be a string"},
      {"ts", R"("1700000000")", "event.ts" + kTs},
      {"ts", "-1", "event.ts" + kTs},
      {"ts", "1.5", "event.ts" + kTs},
      {"ts", "1e3", "event.ts" + kTs},
      {"ts", "18446744073709551615", "event.ts" + kTs},
      {"ts", "true", "event.ts" + kTs},
      {"source", "{}", "event.source must be a string"},
      {"kind", "null", "event.kind must be a string"},
      {"session", "1", "event.session must be a string"},
      {"cwd", "true", "event.cwd must be a string"},
      {"host", "[]", "event.host must be a string"},
      {"pid", R"("42")", "event.pid must be a non-negative integer"},
      {"pid", "-1", "event.pid must be a non-negative integer"},
      {"pid", "4.0", "event.pid must be a non-negative integer"},
      {"truncated", "1", "event.truncated must be a boolean"},
      {"truncated", R"("true")", "event.truncated must be a boolean"},
      {"orig_size", "-5", "event.orig_size must be a non-negative integer"},
      {"orig_size", "2.5", "event.orig_size must be a non-negative integer"},
      {"payload_encoding", "1", "event.payload_encoding must be \"text\""},
  }));
  CAPTURE(c.field, c.raw);
  const Error e = Validate(ToJson(With(ValidFields(), c.field, c.raw)));
  CHECK(e.code == Errc::kWrongType);
  CHECK(std::string(ErrcName(e.code)) == "wrong_type");
  CHECK(e.message == c.message);
}

TEST_CASE("empty required strings are refused", "[event]") {
  const std::string field = GENERATE(as<std::string>{}, "id", "source", "kind");
  const Error e = Validate(ToJson(With(ValidFields(), field, R"("")")));
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "event." + field + " is empty");
}

TEST_CASE("id must be hex", "[event]") {
  const std::string id =
      GENERATE(as<std::string>{}, "xyz", "0011223344556677889g", "00 11",
               "00112233445566778899aabbccddeef_", "0x11", "\\u0000", "\xc3\xa9", "../etc");
  const Error e = Validate(ToJson(With(ValidFields(), "id", Quoted(id))));
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "event.id must be hex (128-bit random or UUID)");
}

TEST_CASE("id accepts lower and upper case hex and UUID dashes", "[event]") {
  for (const char* id : {"0", "ABCDEF0123456789", "01890a5d-ac96-774b-bcce-b302099a8057"}) {
    CHECK(Validate(ToJson(With(ValidFields(), "id", Quoted(id)))).ok());
  }
}

TEST_CASE("unknown fields are refused", "[event]") {
  const std::string field =
      GENERATE(as<std::string>{}, "seq", "received", "ID", "Kind", "payload ", "", "durable", "v",
               // one letter off a field of each length
               "it", "tx", "cwx", "pix", "kinx", "hosx", "sourcx", "sessiox", "payloax",
               "truncatex", "orig_sizx", "source_claimex", "payload_encodinx");
  const Error e = Validate(ToJson(With(ValidFields(), field, "1")));
  CHECK(e.code == Errc::kUnknownField);
  CHECK(std::string(ErrcName(e.code)) == "unknown_field");
  CHECK(e.message == "event." + field + " is not an envelope field");
}

TEST_CASE("repeated fields are refused", "[event]") {
  const std::string field = GENERATE(as<std::string>{}, "id", "ts", "kind", "payload", "pid");
  Fields f = With(ValidFields(), "payload", "1");
  f = With(f, "pid", "1");
  f.emplace_back(field, field == "ts" || field == "pid" || field == "payload" ? "2" : R"("ab")");
  const Error e = Validate(ToJson(f), "events[1]");
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "events[1]." + field + " appears more than once");
}

TEST_CASE("strings at and over their length limits", "[event]") {
  struct Case {
    std::string field;
    size_t limit;
  };
  const Case c = GENERATE(values<Case>({{"id", kMaxIdLength},
                                        {"source", kMaxNameLength},
                                        {"kind", kMaxNameLength},
                                        {"session", kMaxStringLength},
                                        {"cwd", kMaxStringLength},
                                        {"host", kMaxStringLength}}));
  CAPTURE(c.field);
  CHECK(Validate(ToJson(With(ValidFields(), c.field, Quoted(std::string(c.limit, 'a'))))).ok());
  const Error e =
      Validate(ToJson(With(ValidFields(), c.field, Quoted(std::string(c.limit + 1, 'a')))));
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "event." + c.field + " is " + std::to_string(c.limit + 1) +
                         " bytes; the limit is " + std::to_string(c.limit));
}

TEST_CASE("limits count bytes, not characters", "[event]") {
  std::string kind;
  while (kind.size() < kMaxNameLength) kind += "\xc3\xa9";  // 64 x U+00E9 = 128 bytes
  CHECK(Validate(ToJson(With(ValidFields(), "kind", Quoted(kind)))).ok());
  const Error e = Validate(ToJson(With(ValidFields(), "kind", Quoted(kind + "x"))));
  CHECK(e.message == "event.kind is 129 bytes; the limit is 128");
}

TEST_CASE("payload nesting: the limit counts from the frame body's root", "[event]") {
  // Body {"v":1,"event":{...,"payload":P}}: the payload sits at depth 3.
  auto body = [](int payload_depth) {
    return R"({"v":1,"event":)" + ToJson(With(ValidFields(), "payload", Nested(payload_depth))) +
           "}";
  };
  rapidjson::Document doc;
  Error error;
  CHECK(ParseJson(body(kMaxJsonDepth - 2), &doc, &error));
  const Error e = ParseError(body(kMaxJsonDepth - 1));
  CHECK(e.code == Errc::kBadJson);
  CHECK_THAT(e.message, Catch::StartsWith("JSON nested deeper than 256 levels at byte "));
}

TEST_CASE("WriteEnvelope writes the canonical field order exactly", "[event]") {
  const Fields scrambled = {{"payload", R"({"z":1,"a":[true,null]})"},
                            {"payload_encoding", R"("text")"},
                            {"orig_size", "99999"},
                            {"truncated", "true"},
                            {"pid", "77"},
                            {"host", R"("h")"},
                            {"cwd", R"("/w")"},
                            {"session", R"("s")"},
                            {"kind", R"("k")"},
                            {"source", R"("src")"},
                            {"ts", "12"},
                            {"id", R"("abcdef")"}};
  CHECK(Canonical(ToJson(scrambled)) ==
        R"({"id":"abcdef","ts":12,"source":"src","kind":"k","session":"s","cwd":"/w","host":"h",)"
        R"("pid":77,"truncated":true,"orig_size":99999,"payload_encoding":"text",)"
        R"("payload":{"z":1,"a":[true,null]}})");
  // Whitespace goes, escapes are normalised, payload member order is kept.
  CHECK(Canonical(" { \"kind\" : \"a\\/b\" , \"payload\" : { \"b\" : 1 , \"a\" : \"\\u00e9\\n\" } ,"
                  " \"source\":\"s\", \"ts\": 5, \"id\":\"AB\" } ") ==
        "{\"id\":\"AB\",\"ts\":5,\"source\":\"s\",\"kind\":\"a/b\",\"payload\":{\"b\":1,\"a\":"
        "\"\xc3\xa9\\n\"}}");
  // A NUL inside a string survives as an escape.
  CHECK(Canonical(R"({"id":"1","ts":1,"source":"s","kind":"k","session":"a\u0000b"})") ==
        R"({"id":"1","ts":1,"source":"s","kind":"k","session":"a\u0000b"})");
}

TEST_CASE("WriteEnvelope output re-parses to the same canonical envelope", "[event]") {
  const std::string once = Canonical(
      R"({"payload":[1.5,-0.0,1e300,"\ud83d\ude00",{"deep":[[[{}]]]}],"kind":"k","source":"s","ts":1,"id":"f"})");
  CHECK(Canonical(once) == once);
}

TEST_CASE("BuildEventBody writes the documented body", "[event]") {
  EnvelopeFields f;
  f.id = "00112233445566778899aabbccddeeff";
  f.ts = 1700000000000000000;
  f.source = "claude-code";
  f.kind = "PreToolUse";
  f.session = "sess";
  f.cwd = "/home/u";
  f.host = "box";
  f.pid = 123;
  f.payload_json = R"({"tool":"Bash"})";
  f.truncated = true;
  f.orig_size = 5000000;
  const std::string body = BuildEventBody(f, /*durable=*/true);
  CHECK(body ==
        R"({"v":1,"durable":true,"event":{"id":"00112233445566778899aabbccddeeff",)"
        R"("ts":1700000000000000000,"source":"claude-code","kind":"PreToolUse","session":"sess",)"
        R"("cwd":"/home/u","host":"box","pid":123,"truncated":true,"orig_size":5000000,)"
        R"("payload":{"tool":"Bash"}}})");

  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(body, &doc, &error));
  REQUIRE(doc.IsObject());
  REQUIRE(doc.HasMember("event"));
  CHECK(ValidateEnvelope(doc["event"], "event", &error));
  CHECK(error.ok());
  // The envelope part is already canonical.
  rapidjson::StringBuffer sb;
  JsonWriter writer(sb);
  WriteEnvelope(doc["event"], writer);
  const std::string_view envelope(sb.GetString(), sb.GetSize());
  CHECK(body.substr(std::string_view(R"({"v":1,"durable":true,"event":)").size(),
                    envelope.size()) == envelope);
  // So ferryd journals it from the bytes received (proto::WritesAsReceived).
  std::vector<PayloadSpan> spans;
  REQUIRE(ParseEnvelopes(body, 2, &doc, &spans, &error));
  REQUIRE(spans.size() == 1);
  const std::string_view object = std::string_view(body).substr(
      spans[0].object_begin, spans[0].object_end - spans[0].object_begin);
  CHECK(object == envelope);
  CHECK(WritesAsReceived(
      doc["event"], object,
      std::string_view(body).substr(spans[0].begin, spans[0].end - spans[0].begin)));
}

TEST_CASE("BuildEventBody leaves out empty optional fields", "[event]") {
  EnvelopeFields f;
  f.id = "ab";
  f.ts = 0;
  f.source = "s";
  f.kind = "k";
  f.pid = 0;  // 0 is a value; only -1 means "omitted"
  CHECK(BuildEventBody(f, false) ==
        R"({"v":1,"event":{"id":"ab","ts":0,"source":"s","kind":"k","pid":0}})");
  f.pid = -1;
  CHECK(BuildEventBody(f, false) ==
        R"({"v":1,"event":{"id":"ab","ts":0,"source":"s","kind":"k"}})");
}

TEST_CASE("BuildEventBody escapes strings and always validates", "[event]") {
  EnvelopeFields f;
  f.id = NewEventId();
  f.ts = 1;
  f.source = "s\"q\\";
  f.kind = "tab\there";
  const std::string cwd("/a\0b\n\x01", 6);
  f.cwd = cwd;
  f.payload_json = "\"text\"";
  const std::string body = BuildEventBody(f, false);
  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(body, &doc, &error));
  REQUIRE(ValidateEnvelope(doc["event"], "event", &error));
  CHECK(std::string(doc["event"]["source"].GetString()) == "s\"q\\");
  CHECK(std::string(doc["event"]["cwd"].GetString(), doc["event"]["cwd"].GetStringLength()) == cwd);
}

TEST_CASE("BuildEventBody makes OS bytes valid UTF-8", "[event]") {
  // A directory named in Latin-1 is a real cwd; the daemon refuses invalid UTF-8.
  EnvelopeFields f;
  f.id = "ab";
  f.ts = 1;
  f.source = "zsh";
  f.kind = "command";
  f.cwd = "/home/caf\xe9/x";
  f.host = "\xff\xfe";
  f.session = "ok \xc3\xa9 \xed\xa0\x80 \xe2\x82";
  const std::string body = BuildEventBody(f, false);
  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(body, &doc, &error));
  REQUIRE(ValidateEnvelope(doc["event"], "event", &error));
  CHECK(std::string(doc["event"]["cwd"].GetString()) == "/home/caf\xef\xbf\xbd/x");
  CHECK(std::string(doc["event"]["host"].GetString()) == "\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(std::string(doc["event"]["session"].GetString()) ==
        "ok \xc3\xa9 \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd");
}

TEST_CASE("BuildEventBody cuts over-long strings at a character boundary", "[event]") {
  EnvelopeFields f;
  f.id = "ab";
  f.ts = 1;
  f.source = "s";
  std::string kind = "k";
  while (kind.size() < kMaxNameLength + 10) kind += "\xe2\x82\xac";  // U+20AC, 3 bytes
  f.kind = kind;
  const std::string session(kMaxStringLength + 1, 's');
  f.session = session;
  const std::string body = BuildEventBody(f, false);
  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(body, &doc, &error));
  REQUIRE(ValidateEnvelope(doc["event"], "event", &error));
  // 1 + 42 * 3 = 127 bytes: the 43rd euro sign would pass 128.
  CHECK(doc["event"]["kind"].GetStringLength() == 127);
  CHECK(std::string(doc["event"]["kind"].GetString()) == kind.substr(0, 127));
  CHECK(doc["event"]["session"].GetStringLength() == kMaxStringLength);
}

TEST_CASE("NewEventId is 32 lowercase hex characters and distinct", "[event]") {
  std::set<std::string> ids;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = NewEventId();
    REQUIRE(id.size() == 32);
    for (char c : id) {
      INFO(id);
      REQUIRE(((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')));
    }
    ids.insert(id);
  }
  CHECK(ids.size() == 10000);
  // And valid as an envelope id.
  CHECK(Validate(ToJson(With(ValidFields(), "id", Quoted(NewEventId())))).ok());
}

}  // namespace ferry::proto

// Issue 10, defect 8: a payload is written from its bytes, never from a document.
namespace ferry::proto {
namespace {

std::string NestedArrays(int depth) {
  const auto n = static_cast<size_t>(depth);
  return std::string(n, '[') + std::string(n, ']');
}

std::string Canonical(std::string_view text, int envelope_depth) {
  rapidjson::Document doc;
  std::vector<PayloadSpan> spans;
  Error error;
  REQUIRE(ParseEnvelopes(text, envelope_depth, &doc, &spans, &error));
  REQUIRE(spans.size() == 1);
  const rapidjson::Value* ev = &doc;
  if (envelope_depth == 2) ev = &doc["event"];
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  WriteEnvelope(*ev, w, text.substr(spans[0].begin, spans[0].end - spans[0].begin),
                spans[0].too_deep);
  return std::string(sb.GetString(), sb.GetSize());
}

constexpr std::string_view kHead =
    R"({"id":"00112233445566778899aabbccddeeff","ts":1700000000000000000,"source":"zsh","kind":"k",)";

TEST_CASE("WriteEnvelope keeps a payload's numbers and strings as sent", "[event][fidelity]") {
  for (std::string payload :
       {R"({"a":123456789012345678901234567890})", R"([18446744073709551616,-0,-0.0,0.1,1.0])",
        R"([1.50,1E2,1e-7,2.5e+3,-9223372036854775809])", R"("caf\u00e9 \/ \ud83d\ude00")",
        R"(12345678901234567890123)", "true", "null", R"({"":{}})"}) {
    CAPTURE(payload);
    const std::string text = std::string(kHead) + R"("payload":)" + payload + "}";
    CHECK(Canonical(text, 1) == text);
  }
}

TEST_CASE("WriteEnvelope drops only the whitespace between a payload's tokens",
          "[event][fidelity]") {
  const std::string text =
      std::string(kHead) + "\"payload\" : \n { \"a\" : [ 1.50 , \" x \\\" y \" ] } }";
  CHECK(Canonical(text, 1) == std::string(kHead) + R"("payload":{"a":[1.50," x \" y "]}})");
  CHECK(CompactJson(" [ 1 ,\t\"a b\\\\\" , {} ]\r\n") == R"([1,"a b\\",{}])");
  // Compact already (white space only inside strings, also after an escaped quote): as it is.
  for (const char* json : {R"({"a":[1.50," x \" y "]})", R"("a b")", "1", R"({"k\\":"\\ "})"}) {
    INFO(json);
    CHECK(IsCompactJson(json));
    CHECK(CompactJson(json) == json);
  }
  for (const char* json : {R"({"a": 1})", "[1 ]", R"({"a\"":"b" })", "{\n}"}) {
    INFO(json);
    CHECK_FALSE(IsCompactJson(json));
  }
  // Random JSON with white space inside and outside strings and runs of backslashes before
  // quotes: IsCompactJson says yes exactly when CompactJson changes nothing.
  std::mt19937 rng(4122026);
  const std::vector<std::string> tokens = {
      "{", "}", "[", "]", ",", ":", "1", "true", " ", "\n", "\t", R"("a b")", R"("\"")", R"("\\")",
      R"("\\\"x")", R"("x\\\\")", R"(" ")", R"("")",
      // Longer strings, escapes inside them, and (one text in three) up to 40 tokens.
      R"("abcdefghijklmnopqrstuvwxyz")", R"("some words \"quoted\" and a \\ backslash \n")", "\r",
      "1234567890123"};
  size_t compact = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string json;
    for (int k = std::uniform_int_distribution<int>(1, n % 3 == 0 ? 40 : 12)(rng); k > 0; --k) {
      json += tokens[std::uniform_int_distribution<size_t>(0, tokens.size() - 1)(rng)];
    }
    INFO(json);
    const bool is = IsCompactJson(json);
    REQUIRE(is == (CompactJson(json) == json));
    compact += is;
  }
  CHECK(compact > 2000);
  CHECK(compact < 18000);
}

TEST_CASE("ParseEnvelopes: a payload nested past kMaxPayloadDepth is kept as text",
          "[event][fidelity]") {
  REQUIRE(kMaxPayloadDepth == 253);
  for (int depth : {kMaxPayloadDepth - 1, kMaxPayloadDepth, kMaxPayloadDepth + 1, 256, 10000}) {
    CAPTURE(depth);
    const std::string text =
        R"({"v":1,"event":)" + std::string(kHead) + R"("payload":)" + NestedArrays(depth) + "}}";
    const std::string want = depth <= kMaxPayloadDepth
                                 ? std::string(kHead) + R"("payload":)" + NestedArrays(depth) + "}"
                                 : std::string(kHead) + R"("payload_encoding":"text","payload":")" +
                                       NestedArrays(depth) + "\"}";
    CHECK(Canonical(text, 2) == want);
  }
  // Outside a payload the limit is unchanged.
  rapidjson::Document doc;
  std::vector<PayloadSpan> spans;
  Error error;
  CHECK_FALSE(ParseEnvelopes(R"({"v":)" + NestedArrays(300) + "}", 2, &doc, &spans, &error));
  CHECK(error.message == "JSON nested deeper than 256 levels at byte 260");
}

TEST_CASE("ParsePayloadJson applies the payload limit the daemon applies", "[event][fidelity]") {
  rapidjson::Document doc;
  Error error;
  CHECK(ParsePayloadJson(NestedArrays(kMaxPayloadDepth), &doc, &error));
  CHECK_FALSE(ParsePayloadJson(NestedArrays(kMaxPayloadDepth + 1), &doc, &error));
  CHECK(error.message == "JSON nested deeper than 253 levels at byte 253");
  // A number beyond a double's range is not JSON ferry can hold: the client keeps it as text.
  CHECK_FALSE(ParsePayloadJson("1e400", &doc, &error));
}

TEST_CASE("ParseEnvelopes: one span per envelope, empty without a payload", "[event][fidelity]") {
  const std::string text = R"({"v":1,"events":[{"payload":1},{"kind":"x"},{"payload": [2] }]})";
  rapidjson::Document doc;
  std::vector<PayloadSpan> spans;
  Error error;
  REQUIRE(ParseEnvelopes(text, 3, &doc, &spans, &error));
  REQUIRE(spans.size() == 3);
  CHECK(text.substr(spans[0].begin, spans[0].end - spans[0].begin) == "1");
  CHECK_FALSE(spans[1].present());
  CHECK(text.substr(spans[2].begin, spans[2].end - spans[2].begin) == "[2]");
}

}  // namespace
}  // namespace ferry::proto

namespace ferry::proto {
namespace {

// Found by tests/fuzz (event, frame and redact targets): rapidjson 1.1 converted a zero
// mantissa with an exponent through __builtin_clzll(0), so 0e-77 was read as 8.96e102 and
// 0e111 as 1.28e294. ferry converts numbers itself now; each kind is what rapidjson picks.
TEST_CASE("ParseJson reads numbers exactly, zero mantissas included", "[event][json]") {
  rapidjson::Document doc;
  Error error;
  REQUIRE(ParseJson(R"({"a":0e-77,"b":0e111,"c":-0E5,"d":-0,"e":1e-400,"f":0.1,)"
                    R"("g":-2147483648,"h":4294967295,"i":-2147483649,"j":18446744073709551615,)"
                    R"("k":18446744073709551616,"l":1.7976931348623157e308,"m":5e-324})",
                    &doc, &error));
  CHECK(doc["a"].IsDouble());
  CHECK(doc["a"].GetDouble() == 0.0);
  CHECK(doc["b"].GetDouble() == 0.0);
  CHECK(doc["c"].GetDouble() == 0.0);
  CHECK(std::signbit(doc["c"].GetDouble()));
  CHECK(doc["d"].IsDouble());
  CHECK(std::signbit(doc["d"].GetDouble()));
  CHECK(doc["e"].GetDouble() == 0.0);
  CHECK(doc["f"].GetDouble() == 0.1);
  CHECK(doc["g"].IsInt());
  CHECK(doc["g"].GetInt() == -2147483647 - 1);
  CHECK(doc["h"].IsUint());
  CHECK(doc["h"].GetUint() == 4294967295u);
  CHECK(doc["i"].IsInt64());
  CHECK_FALSE(doc["i"].IsInt());
  CHECK(doc["j"].IsUint64());
  CHECK(doc["j"].GetUint64() == 18446744073709551615ull);
  CHECK(doc["k"].IsDouble());
  CHECK(doc["k"].GetDouble() == 18446744073709551616.0);
  CHECK(doc["l"].GetDouble() == 1.7976931348623157e308);
  CHECK(doc["m"].GetDouble() == 5e-324);
  CHECK(ParseError("[1, -1e400]").message ==
        "invalid JSON at byte 4: Number too big to be stored in double.");
}

}  // namespace
}  // namespace ferry::proto

// ParseJson reads through proto::JsonStream, whose string scan loads 16 bytes at a time from
// where each run of plain characters starts while 16 bytes remain: these tests put every
// kind of string content at every offset of a block and across the end of the text, and
// compare with rapidjson's byte-at-a-time reading.
namespace ferry::proto {
namespace {

bool HasSurrogateEscapeSlow(std::string_view s) {
  for (size_t i = 0; i + 2 < s.size(); ++i) {
    if (s[i] == '\\' && s[i + 1] == 'u' && (s[i + 2] == 'd' || s[i + 2] == 'D')) return true;
  }
  return false;
}

TEST_CASE("MayHoldSurrogateEscape finds a \\uD at every offset", "[event][json]") {
  for (size_t at = 0; at < 70; ++at) {
    for (const char* escape : {"\\ud", "\\uD"}) {
      CAPTURE(at, escape);
      std::string s(at, 'x');
      s += escape;
      CHECK(MayHoldSurrogateEscape(s));
      s += std::string(40, 'x');
      CHECK(MayHoldSurrogateEscape(s));
      s[at + 2] = 'e';  // \ue...: not a surrogate
      CHECK_FALSE(MayHoldSurrogateEscape(s));
    }
    // Cut short at the end of the text: no 'd' after "\u".
    CHECK_FALSE(MayHoldSurrogateEscape(std::string(at, 'x') + "\\u"));
  }
  // Random text of the characters that matter, differential with the plain definition.
  std::mt19937 rng(5122026);
  const std::string alphabet = "\\udDx\"";
  size_t found = 0;
  for (int n = 0; n < 50000; ++n) {
    std::string s(std::uniform_int_distribution<size_t>(0, 80)(rng), ' ');
    for (char& c : s) c = alphabet[std::uniform_int_distribution<size_t>(0, 5)(rng)];
    INFO(s);
    const bool want = HasSurrogateEscapeSlow(s);
    REQUIRE(MayHoldSurrogateEscape(s) == want);
    found += want;
  }
  CHECK(found > 5000);
  CHECK(found < 45000);
}

TEST_CASE("ParseJson reads strings as rapidjson's byte-at-a-time reader does, at any offset",
          "[event][json]") {
  // Pieces of string content: plain text, escapes (also a quote, a backslash and a surrogate
  // pair), UTF-8, and content that is not allowed (a control byte, a bad escape, a lone low
  // surrogate) or ends the string early (a bare quote).
  const std::vector<std::string> pieces = {"a",
                                           "abcdefghijklmnopq",
                                           " ",
                                           "\\n",
                                           "\\\"",
                                           "\\\\",
                                           "\\/",
                                           "\\u00e9",
                                           "\\ud83d\\ude00",
                                           "\xc3\xa9",
                                           "\xe2\x82\xac",
                                           "\x01",
                                           "\x1f",
                                           "\\x",
                                           "\\udc00",
                                           "\"",
                                           "\\u12"};
  std::mt19937 rng(6122026);
  size_t accepted = 0, refused = 0;
  for (int n = 0; n < 20000; ++n) {
    std::string json(std::uniform_int_distribution<size_t>(0, 31)(rng), ' ');
    json += '[';
    for (int k = std::uniform_int_distribution<int>(1, 3)(rng); k > 0; --k) {
      if (json.back() != '[') json += ',';
      json += '"';
      for (int p = std::uniform_int_distribution<int>(0, 12)(rng); p > 0; --p) {
        json += pieces[std::uniform_int_distribution<size_t>(0, pieces.size() - 1)(rng)];
      }
      json += '"';
    }
    json += ']';
    // Now and then cut short, so that a string runs into the end of the text.
    if (n % 8 == 0) json.resize(std::uniform_int_distribution<size_t>(0, json.size())(rng));
    INFO(json);
    rapidjson::Document got;
    Error error;
    const bool ok = ParseJson(json, &got, &error);
    // The reference: rapidjson's own DOM parse over a MemoryStream (no string scan).
    rapidjson::Document want;
    want.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
    const bool lone_low = json.find("\\udc00") != std::string::npos;
    // Cut inside a UTF-8 sequence: ParseJson checks the encoding before it parses.
    const bool bad_utf8 = FirstInvalidUtf8(json) != std::string::npos;
    if (ok) {
      ++accepted;
      REQUIRE_FALSE(want.HasParseError());
      REQUIRE(got == want);
    } else {
      ++refused;
      // A lone low surrogate is the one thing ParseJson refuses that rapidjson takes.
      REQUIRE((want.HasParseError() || lone_low || bad_utf8));
      if (!lone_low && !bad_utf8) {  // else ParseJson names that before rapidjson's error
        REQUIRE(error.message == "invalid JSON at byte " + std::to_string(want.GetErrorOffset()) +
                                     ": " + rapidjson::GetParseError_En(want.GetParseError()));
      }
    }
  }
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}

TEST_CASE("ParseJson reads no byte past the text it is given", "[event][json]") {
  // Each text in a heap block of exactly its size with no terminator (ASan reports any read
  // past it), and as the first part of a larger buffer whose next bytes would change the
  // value if they were read.
  for (size_t len = 0; len < 80; ++len) {
    const std::string json = "[\"" + std::string(len, 'a') + "\"]";
    CAPTURE(len);
    std::unique_ptr<char[]> exact(new char[json.size()]);
    std::memcpy(exact.get(), json.data(), json.size());
    rapidjson::Document doc;
    Error error;
    REQUIRE(ParseJson(std::string_view(exact.get(), json.size()), &doc, &error));
    CHECK(doc[0].GetStringLength() == len);
    // Cut inside a longer string: refused, though the bytes after the cut would close it.
    const std::string longer = "[\"" + std::string(len + 40, 'a') + "\"]";
    CHECK_FALSE(ParseJson(std::string_view(longer).substr(0, 2 + len), &doc, &error));
    CHECK(error.message == "invalid JSON at byte " + std::to_string(2 + len) +
                               ": Missing a closing quotation mark in string.");
  }
}

}  // namespace
}  // namespace ferry::proto
