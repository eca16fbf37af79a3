#include "proto/messages.h"

#include <catch2/catch.hpp>

#include <algorithm>
#include <functional>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace ferry::proto {
namespace {

constexpr size_t kMaxBatch = 10000;

std::string Envelope(int n) {
  return R"({"id":"a)" + std::to_string(n) + R"(","ts":)" + std::to_string(1000 + n) +
         R"(,"source":"bash","kind":"command","payload":{"n":)" + std::to_string(n) + "}}";
}

std::string EventBody(const std::string& envelope, const std::string& extra = "") {
  return R"({"v":1,)" + extra + R"("event":)" + envelope + "}";
}

std::string BatchBody(const std::vector<std::string>& envelopes, const std::string& extra = "") {
  std::string s = R"({"v":1,)" + extra + R"("events":[)";
  for (size_t i = 0; i < envelopes.size(); ++i) s += (i ? "," : "") + envelopes[i];
  return s + "]}";
}

std::vector<std::string> Envelopes(int count) {
  std::vector<std::string> out;
  for (int i = 0; i < count; ++i) out.push_back(Envelope(i));
  return out;
}

Error ParseFails(FrameType type, const std::string& body, size_t max_batch = kMaxBatch) {
  EventRequest request;
  Error error;
  INFO(body.substr(0, 300));
  CHECK_FALSE(request.Parse(type, body, max_batch, &error));
  CHECK_FALSE(error.ok());
  return error;
}

std::string Canonical(const rapidjson::Value& event) {
  rapidjson::StringBuffer sb;
  JsonWriter writer(sb);
  WriteEnvelope(event, writer);
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

TEST_CASE("EVENT: a valid request", "[messages]") {
  EventRequest request;
  Error error;
  REQUIRE(request.Parse(FrameType::kEvent, EventBody(Envelope(7)), kMaxBatch, &error));
  CHECK(error.ok());
  REQUIRE(request.size() == 1);
  CHECK_FALSE(request.durable());
  CHECK(Canonical(request.at(0)) == Envelope(7));
}

TEST_CASE("EVENT and EVENT_BATCH: the durable flag", "[messages]") {
  EventRequest request;
  Error error;
  REQUIRE(request.Parse(FrameType::kEvent, EventBody(Envelope(1), R"("durable":true,)"), kMaxBatch,
                        &error));
  CHECK(request.durable());
  REQUIRE(request.Parse(FrameType::kEvent, EventBody(Envelope(1), R"("durable":false,)"), kMaxBatch,
                        &error));
  CHECK_FALSE(request.durable());
  // The flag may come after the event, and resets between parses.
  REQUIRE(request.Parse(FrameType::kEvent,
                        R"({"event":)" + Envelope(1) + R"(,"durable":true,"v":1})", kMaxBatch,
                        &error));
  CHECK(request.durable());
  REQUIRE(request.Parse(FrameType::kEvent, EventBody(Envelope(1)), kMaxBatch, &error));
  CHECK_FALSE(request.durable());
  REQUIRE(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(2), R"("durable":true,)"),
                        kMaxBatch, &error));
  CHECK(request.durable());

  for (const char* bad : {"1", "\"true\"", "null", "[]"}) {
    const Error e = ParseFails(FrameType::kEvent,
                               EventBody(Envelope(1), std::string(R"("durable":)") + bad + ","));
    CHECK(e.code == Errc::kWrongType);
    CHECK(e.message == "durable must be a boolean");
  }
}

TEST_CASE("version missing or wrong", "[messages]") {
  SECTION("missing") {
    const Error e = ParseFails(FrameType::kEvent, R"({"event":)" + Envelope(1) + "}");
    CHECK(e.code == Errc::kBadVersion);
    CHECK(std::string(ErrcName(e.code)) == "bad_version");
    CHECK(e.message == "missing protocol version field \"v\"");
  }
  SECTION("a version this build does not speak") {
    for (const char* v : {"0", "2", "4294967296", "-1"}) {
      const Error e = ParseFails(FrameType::kEvent,
                                 std::string(R"({"v":)") + v + R"(,"event":)" + Envelope(1) + "}");
      CHECK(e.code == Errc::kBadVersion);
      CHECK(e.message == std::string("protocol version ") + v +
                             " is not supported; this build speaks version 1");
    }
  }
  SECTION("not an integer") {
    for (const char* v : {"\"1\"", "1.0", "null", "true", "[1]"}) {
      const Error e = ParseFails(FrameType::kEventBatch, std::string(R"({"v":)") + v +
                                                             R"(,"events":[)" + Envelope(1) + "]}");
      CHECK(e.code == Errc::kBadVersion);
      CHECK(e.message == "protocol version field \"v\" must be an integer");
    }
  }
}

TEST_CASE("the body must be a JSON object", "[messages]") {
  Error e = ParseFails(FrameType::kEvent, "");
  CHECK(e.code == Errc::kBadJson);
  CHECK(e.message == "invalid JSON at byte 0: The document is empty.");
  e = ParseFails(FrameType::kEvent, "[1]");
  CHECK(e.code == Errc::kNotObject);
  CHECK(std::string(ErrcName(e.code)) == "not_object");
  CHECK(e.message == "frame body must be a JSON object");
  e = ParseFails(FrameType::kEvent, EventBody(Envelope(1)) + "x");
  CHECK(e.code == Errc::kBadJson);
  CHECK(e.message == "invalid JSON at byte " + std::to_string(EventBody(Envelope(1)).size()) +
                         ": The document root must not be followed by other values.");
  e = ParseFails(FrameType::kEvent, EventBody(Envelope(1)) + std::string(1, '\0'));
  CHECK(e.code == Errc::kBadJson);
}

TEST_CASE("EVENT: the event object is required and validated", "[messages]") {
  Error e = ParseFails(FrameType::kEvent, R"({"v":1})");
  CHECK(e.code == Errc::kMissingField);
  CHECK(e.message == "EVENT needs an \"event\" object");
  e = ParseFails(FrameType::kEvent, R"({"v":1,"event":[]})");
  CHECK(e.code == Errc::kNotObject);
  CHECK(e.message == "event must be an object");
  e = ParseFails(FrameType::kEvent, R"({"v":1,"event":{"id":"ab","ts":1,"source":"s"}})");
  CHECK(e.code == Errc::kMissingField);
  CHECK(e.message == "event.kind is required");
  e = ParseFails(FrameType::kEvent,
                 R"({"v":1,"event":{"id":"ab","ts":1,"source":"s","kind":"k","sequence":1}})");
  CHECK(e.code == Errc::kUnknownField);
  CHECK(e.message == "event.sequence is not an envelope field");
}

TEST_CASE("unknown top-level fields are refused", "[messages]") {
  Error e = ParseFails(FrameType::kEvent, EventBody(Envelope(1), R"("extra":1,)"));
  CHECK(e.code == Errc::kUnknownField);
  CHECK(e.message == "\"extra\" is not a field of EVENT");
  // "events" belongs to EVENT_BATCH and "event" to EVENT.
  e = ParseFails(FrameType::kEvent, R"({"v":1,"events":[]})");
  CHECK(e.code == Errc::kUnknownField);
  CHECK(e.message == "\"events\" is not a field of EVENT");
  e = ParseFails(FrameType::kEventBatch, EventBody(Envelope(1)));
  CHECK(e.code == Errc::kUnknownField);
  CHECK(e.message == "\"event\" is not a field of EVENT_BATCH");
}

TEST_CASE("repeated top-level fields are refused", "[messages]") {
  Error e = ParseFails(FrameType::kEvent, R"({"v":1,"v":2,"event":)" + Envelope(1) + "}");
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "\"v\" appears more than once");
  e = ParseFails(FrameType::kEvent,
                 R"({"v":1,"event":)" + Envelope(1) + R"(,"event":)" + Envelope(2) + "}");
  CHECK(e.message == "\"event\" appears more than once");
  e = ParseFails(FrameType::kEvent, EventBody(Envelope(1), R"("durable":true,"durable":false,)"));
  CHECK(e.message == "\"durable\" appears more than once");
  e = ParseFails(FrameType::kEventBatch,
                 R"({"v":1,"events":[)" + Envelope(1) + R"(],"events":[)" + Envelope(2) + "]}");
  CHECK(e.message == "\"events\" appears more than once");
}

TEST_CASE("a non-event frame type is not an event request", "[messages]") {
  for (FrameType type : {FrameType::kHello, FrameType::kAck, FrameType::kStatusReq}) {
    const Error e = ParseFails(type, R"({"v":1})");
    CHECK(e.code == Errc::kUnexpectedType);
    CHECK(e.message == "not an event frame");
  }
}

TEST_CASE("EVENT_BATCH: a valid batch", "[messages]") {
  EventRequest request;
  Error error;
  REQUIRE(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(5)), kMaxBatch, &error));
  REQUIRE(request.size() == 5);
  CHECK_FALSE(request.durable());
  for (size_t i = 0; i < 5; ++i) CHECK(Canonical(request.at(i)) == Envelope(static_cast<int>(i)));
}

TEST_CASE("EVENT_BATCH: one bad event refuses the whole batch, named by index", "[messages]") {
  std::vector<std::string> events = Envelopes(6);
  events[3] = R"({"id":"a3","ts":1,"source":"bash"})";
  const Error e = ParseFails(FrameType::kEventBatch, BatchBody(events));
  CHECK(e.code == Errc::kMissingField);
  CHECK(e.message == "events[3].kind is required");

  events[3] = R"({"id":"a3","ts":1,"source":"bash","kind":7})";
  CHECK(ParseFails(FrameType::kEventBatch, BatchBody(events)).message ==
        "events[3].kind must be a string");
  events[3] = "[]";
  CHECK(ParseFails(FrameType::kEventBatch, BatchBody(events)).message ==
        "events[3] must be an object");
  // The first bad one is reported.
  events[3] = Envelope(3);
  events[1] = R"({"id":"zz","ts":1,"source":"bash","kind":"k"})";
  events[5] = R"({"id":"a5","ts":-1,"source":"bash","kind":"k"})";
  CHECK(ParseFails(FrameType::kEventBatch, BatchBody(events)).message ==
        "events[1].id must be hex (128-bit random or UUID)");
}

TEST_CASE("EVENT_BATCH: the events array", "[messages]") {
  Error e = ParseFails(FrameType::kEventBatch, R"({"v":1})");
  CHECK(e.code == Errc::kMissingField);
  CHECK(e.message == "EVENT_BATCH needs an \"events\" array");
  e = ParseFails(FrameType::kEventBatch, R"({"v":1,"events":{}})");
  CHECK(e.code == Errc::kWrongType);
  CHECK(e.message == "events must be an array");
  e = ParseFails(FrameType::kEventBatch, R"({"v":1,"events":[]})");
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "events is empty");
}

TEST_CASE("EVENT_BATCH: the event count limit", "[messages]") {
  EventRequest request;
  Error error;
  CHECK(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(3)), 3, &error));
  CHECK(request.size() == 3);
  const Error e = ParseFails(FrameType::kEventBatch, BatchBody(Envelopes(4)), 3);
  CHECK(e.code == Errc::kTooManyEvents);
  CHECK(std::string(ErrcName(e.code)) == "too_many_events");
  CHECK(e.message == "batch holds 4 events; the limit is 3");
  // The count is checked before the events are validated: no work for an oversized batch.
  std::vector<std::string> bad(11, "1");
  CHECK(ParseFails(FrameType::kEventBatch, BatchBody(bad), 10).message ==
        "batch holds 11 events; the limit is 10");
  // The default limit.
  CHECK(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(10000)), kMaxBatch, &error));
  CHECK(ParseFails(FrameType::kEventBatch, BatchBody(Envelopes(10001))).message ==
        "batch holds 10001 events; the limit is 10000");
}

TEST_CASE("an EventRequest can be reused", "[messages]") {
  EventRequest request;
  Error error;
  REQUIRE(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(3)), kMaxBatch, &error));
  CHECK(request.size() == 3);
  Error bad;
  CHECK_FALSE(request.Parse(FrameType::kEvent, "{", kMaxBatch, &bad));
  REQUIRE(request.Parse(FrameType::kEvent, EventBody(Envelope(9)), kMaxBatch, &error));
  REQUIRE(request.size() == 1);
  CHECK(Canonical(request.at(0)) == Envelope(9));
  REQUIRE(request.Parse(FrameType::kEventBatch, BatchBody(Envelopes(2)), kMaxBatch, &error));
  REQUIRE(request.size() == 2);
  CHECK(Canonical(request.at(1)) == Envelope(1));
}

TEST_CASE("a reused EventRequest does not keep old bodies", "[messages]") {
  // ferryd parses every frame of a connection with one EventRequest.
  EventRequest request;
  Error error;
  const std::string body = EventBody(R"({"id":"ab","ts":1,"source":"s","kind":"k","payload":")" +
                                     std::string(8000, 'x') + "\"}");
  REQUIRE(request.Parse(FrameType::kEvent, body, kMaxBatch, &error));
  const size_t after_one = request.TEST_allocator_bytes();
  for (int i = 0; i < 1000; ++i) REQUIRE(request.Parse(FrameType::kEvent, body, kMaxBatch, &error));
  CHECK(request.TEST_allocator_bytes() == after_one);
  CHECK(request.TEST_allocator_bytes() < 64 * 1024);
}

TEST_CASE("ParseVersionedRequest", "[messages]") {
  rapidjson::Document doc;
  Error error;
  CHECK(ParseVersionedRequest(MakeStatusRequestBody(), &doc, &error));
  CHECK(MakeStatusRequestBody() == R"({"v":1})");
  CHECK(ParseVersionedRequest(R"({"v":1,"client":"ferry/0.1.0"})", &doc, &error));
  CHECK_FALSE(ParseVersionedRequest(R"({"v":3})", &doc, &error));
  CHECK(error.code == Errc::kBadVersion);
  CHECK(error.message == "protocol version 3 is not supported; this build speaks version 1");
  CHECK_FALSE(ParseVersionedRequest("{}", &doc, &error));
  CHECK(error.message == "missing protocol version field \"v\"");
  CHECK_FALSE(ParseVersionedRequest("1", &doc, &error));
  CHECK(error.code == Errc::kNotObject);
}

TEST_CASE("ACK body round trip", "[messages]") {
  CHECK(MakeAckBody(Ack{42, 42, false}) == R"({"first_seq":42,"last_seq":42,"durable":false})");
  CHECK(MakeAckBody(Ack{1, 10000, true}) == R"({"first_seq":1,"last_seq":10000,"durable":true})");
  for (const Ack in : {Ack{0, 0, false}, Ack{1, 1, true}, Ack{7, 9, false},
                       Ack{UINT64_MAX - 1, UINT64_MAX, true}}) {
    Ack out{99, 99, !in.durable};
    Error error;
    REQUIRE(ParseAckBody(MakeAckBody(in), &out, &error));
    CHECK(out.first_seq == in.first_seq);
    CHECK(out.last_seq == in.last_seq);
    CHECK(out.durable == in.durable);
  }
}

TEST_CASE("ACK body errors", "[messages]") {
  Ack ack;
  Error error;
  CHECK_FALSE(ParseAckBody("nope", &ack, &error));
  CHECK(error.code == Errc::kBadJson);
  CHECK_FALSE(ParseAckBody("[]", &ack, &error));
  CHECK(error.code == Errc::kNotObject);
  CHECK(error.message == "ACK body must be an object");
  for (const char* body :
       {R"({"last_seq":1})", R"({"first_seq":1})", R"({"first_seq":"1","last_seq":1})",
        R"({"first_seq":1,"last_seq":-1})"}) {
    INFO(body);
    CHECK_FALSE(ParseAckBody(body, &ack, &error));
    CHECK(error.code == Errc::kMissingField);
    CHECK(error.message == "ACK needs integer first_seq and last_seq");
  }
  // durable is optional and only `true` means durable.
  REQUIRE(ParseAckBody(R"({"first_seq":1,"last_seq":2})", &ack, &error));
  CHECK_FALSE(ack.durable);
  REQUIRE(ParseAckBody(R"({"first_seq":1,"last_seq":2,"durable":1})", &ack, &error));
  CHECK_FALSE(ack.durable);
}

TEST_CASE("ERROR body round trip for every code", "[messages]") {
  for (int c = 0; c <= static_cast<int>(Errc::kInternal); ++c) {
    const Error in{static_cast<Errc>(c), "message for " + std::to_string(c)};
    const std::string body = MakeErrorBody(in, c % 2 == 0);
    CHECK(body == std::string(R"({"code":")") + ErrcName(in.code) + R"(","message":"message for )" +
                      std::to_string(c) + R"(","fatal":)" + (c % 2 == 0 ? "true" : "false") + "}");
    Error out;
    REQUIRE(ParseErrorBody(body, &out));
    CHECK(out.code == in.code);
    CHECK(out.message == in.message);
  }
}

TEST_CASE("ERROR body escapes any message", "[messages]") {
  static constexpr char kMessage[] = "quote \" backslash \\ newline \n nul \0 end";
  const Error in{Errc::kBadJson, std::string(kMessage, sizeof kMessage - 1)};
  const std::string body = MakeErrorBody(in, true);
  CHECK(
      body ==
      R"({"code":"bad_json","message":"quote \" backslash \\ newline \n nul \u0000 end","fatal":true})");
  Error out;
  REQUIRE(ParseErrorBody(body, &out));
  CHECK(out.code == Errc::kBadJson);
  CHECK(out.message == in.message);
}

TEST_CASE("ERROR body from a newer or odd peer", "[messages]") {
  Error out;
  REQUIRE(ParseErrorBody(R"({"code":"brand_new_code","message":"m"})", &out));
  CHECK(out.code == Errc::kInternal);
  CHECK(out.message == "m");
  REQUIRE(ParseErrorBody(R"({"code":"idle_timeout"})", &out));
  CHECK(out.code == Errc::kIdleTimeout);
  CHECK(out.message == "(no message)");
  REQUIRE(ParseErrorBody("{}", &out));
  CHECK(out.code == Errc::kInternal);
  CHECK_FALSE(ParseErrorBody("not json", &out));
  CHECK_FALSE(ParseErrorBody("[]", &out));
}

}  // namespace ferry::proto

namespace ferry::proto {
namespace {

TEST_CASE("QUERY_REQ body round-trips and is validated", "[messages]") {
  QueryRequest in{"SELECT \"x\" FROM events", 7};
  QueryRequest out;
  Error error;
  REQUIRE(ParseQueryRequestBody(MakeQueryRequestBody(in), &out, &error));
  CHECK(out.sql == in.sql);
  CHECK(out.limit == 7);
  REQUIRE(ParseQueryRequestBody(R"({"v":1,"sql":"SELECT 1"})", &out, &error));
  CHECK(out.limit == 0);
  CHECK_FALSE(ParseQueryRequestBody(R"({"v":1})", &out, &error));
  CHECK(error.code == Errc::kMissingField);
  CHECK_FALSE(ParseQueryRequestBody(R"({"v":1,"sql":"x","limit":-1})", &out, &error));
  CHECK(error.code == Errc::kWrongType);
  CHECK_FALSE(ParseQueryRequestBody(R"({"v":2,"sql":"x"})", &out, &error));
  CHECK(error.code == Errc::kBadVersion);
}

}  // namespace
}  // namespace ferry::proto
TEST_CASE("TAIL_REQ: fields, defaults, round trip and refusals", "[messages][tail]") {
  using ferry::proto::TailRequest;
  TailRequest r;
  ferry::proto::Error e;
  REQUIRE(ferry::proto::ParseTailRequest(R"({"v":1})", &r, &e));
  CHECK(r.from == 0);
  CHECK(r.last == 10);
  CHECK_FALSE(r.follow);
  CHECK(r.source.empty());
  REQUIRE(ferry::proto::ParseTailRequest(
      R"({"v":1,"from":7,"follow":true,"source":"zsh","kind":"command"})", &r, &e));
  CHECK(r.from == 7);
  CHECK(r.follow);
  CHECK(r.source == "zsh");
  CHECK(r.kind == "command");
  TailRequest back;
  REQUIRE(ferry::proto::ParseTailRequest(ferry::proto::MakeTailRequestBody(r), &back, &e));
  CHECK((back.from == 7 && back.follow && back.source == "zsh" && back.kind == "command"));
  r = TailRequest();
  r.last = 3;
  REQUIRE(ferry::proto::ParseTailRequest(ferry::proto::MakeTailRequestBody(r), &back, &e));
  CHECK((back.from == 0 && back.last == 3));

  CHECK_FALSE(ferry::proto::ParseTailRequest(R"({"v":1,"from":-1})", &r, &e));
  CHECK(e.code == ferry::proto::Errc::kWrongType);
  CHECK_FALSE(ferry::proto::ParseTailRequest(R"({"v":1,"follow":1})", &r, &e));
  CHECK(e.code == ferry::proto::Errc::kWrongType);
  CHECK_FALSE(ferry::proto::ParseTailRequest(R"({"v":1,"source":3})", &r, &e));
  CHECK_FALSE(ferry::proto::ParseTailRequest(R"({"v":1,"frm":3})", &r, &e));
  CHECK(e.code == ferry::proto::Errc::kUnknownField);
  CHECK_FALSE(ferry::proto::ParseTailRequest(R"({"from":3})", &r, &e));
  CHECK(e.code == ferry::proto::Errc::kBadVersion);
}

namespace ferry::proto {
namespace {

TEST_CASE("FLUSH_REQ body round-trips and is validated", "[messages][sinks]") {
  FlushRequest out;
  Error error;
  REQUIRE(ParseFlushRequestBody(MakeFlushRequestBody({"central", true, 30000}), &out, &error));
  CHECK(out.sink == "central");
  CHECK(out.wait);
  CHECK(out.timeout_ms == 30000);
  // Defaults: every sink, no wait, no limit; a reused request is reset.
  REQUIRE(ParseFlushRequestBody(MakeFlushRequestBody({}), &out, &error));
  CHECK(out.sink.empty());
  CHECK_FALSE(out.wait);
  CHECK(out.timeout_ms == 0);
  CHECK(MakeFlushRequestBody({}) == R"({"v":1,"wait":false})");
  REQUIRE(ParseFlushRequestBody(R"({"v":1})", &out, &error));
  CHECK(out.sink.empty());

  const std::pair<const char*, Errc> bad[] = {
      {R"({"v":1,"sink":7})", Errc::kWrongType},
      {R"({"v":1,"wait":"yes"})", Errc::kWrongType},
      {R"({"v":1,"timeout_ms":-1})", Errc::kWrongType},
      {R"({"v":1,"timeout_ms":1.5})", Errc::kWrongType},
      {R"({"v":1,"sinks":"a"})", Errc::kUnknownField},
      {R"({"v":2})", Errc::kBadVersion},
      {R"({"wait":true})", Errc::kBadVersion},
      {R"([1])", Errc::kNotObject},
      {R"({"v":1,)", Errc::kBadJson},
  };
  for (const auto& [body, code] : bad) {
    INFO(body);
    error = Error();
    CHECK_FALSE(ParseFlushRequestBody(body, &out, &error));
    CHECK(error.code == code);
    CHECK_FALSE(error.message.empty());
  }
  CHECK_FALSE(ParseFlushRequestBody(R"({"v":1,"sinks":"a"})", &out, &error));
  CHECK(error.message == R"("sinks" is not a field of FLUSH_REQ)");
}

TEST_CASE("DEADLETTER_REQ body round-trips and is validated", "[messages][sinks]") {
  DeadletterRequest out;
  Error error;
  REQUIRE(
      ParseDeadletterRequestBody(MakeDeadletterRequestBody({"replay", "central"}), &out, &error));
  CHECK(out.op == "replay");
  CHECK(out.sink == "central");
  REQUIRE(ParseDeadletterRequestBody(MakeDeadletterRequestBody({"purge", ""}), &out, &error));
  CHECK(out.op == "purge");
  CHECK(out.sink.empty());
  CHECK(MakeDeadletterRequestBody({"purge", ""}) == R"({"v":1,"op":"purge"})");

  const std::pair<const char*, Errc> bad[] = {
      {R"({"v":1})", Errc::kMissingField},
      {R"({"v":1,"op":"drop"})", Errc::kBadValue},
      {R"({"v":1,"op":1})", Errc::kWrongType},
      {R"({"v":1,"op":"purge","sink":null})", Errc::kWrongType},
      {R"({"v":1,"op":"purge","all":true})", Errc::kUnknownField},
      {R"({"v":3,"op":"purge"})", Errc::kBadVersion},
      {R"("purge")", Errc::kNotObject},
  };
  for (const auto& [body, code] : bad) {
    INFO(body);
    error = Error();
    CHECK_FALSE(ParseDeadletterRequestBody(body, &out, &error));
    CHECK(error.code == code);
    CHECK_FALSE(error.message.empty());
  }
  CHECK_FALSE(ParseDeadletterRequestBody(R"({"v":1,"op":"drop"})", &out, &error));
  CHECK(error.message == R"(op must be "list", "replay" or "purge")");
  REQUIRE(ParseDeadletterRequestBody(MakeDeadletterRequestBody({"list", "central"}), &out, &error));
  CHECK(out.op == "list");
  CHECK(out.sink == "central");
}

TEST_CASE("DEADLETTER_RESULT of op list round-trips its letters", "[messages][sinks]") {
  DeadletterListEntry a;
  a.name = "central";
  a.letters = {R"({"seq":3,"status":400,"event":{"id":"x"}})", R"({"seq":9,"status":422})"};
  a.count = 3;
  a.skipped = 1;
  a.replaying = 2;
  a.truncated = true;
  DeadletterListEntry b;
  b.name = "other";
  b.error = "cannot read it";
  const std::string body = MakeDeadletterListResultBody({a, b});
  std::vector<DeadletterListEntry> out;
  Error error;
  REQUIRE(ParseDeadletterListResultBody(body, &out, &error));
  REQUIRE(out.size() == 2);
  CHECK(out[0].name == "central");
  CHECK(out[0].letters == a.letters);
  CHECK(out[0].count == 3);
  CHECK(out[0].skipped == 1);
  CHECK(out[0].replaying == 2);
  CHECK(out[0].truncated);
  CHECK(out[1].name == "other");
  CHECK(out[1].letters.empty());
  CHECK(out[1].error == "cannot read it");
  CHECK_FALSE(ParseDeadletterListResultBody(R"({"op":"purge","sinks":[]})", &out, &error));
  CHECK_FALSE(
      ParseDeadletterListResultBody(R"({"op":"list","sinks":[{"letters":[1]}]})", &out, &error));
}

TEST_CASE("unknown_sink is a named error code that survives an ERROR body", "[messages][sinks]") {
  CHECK(std::string(ErrcName(Errc::kUnknownSink)) == "unknown_sink");
  Error out;
  REQUIRE(ParseErrorBody(MakeErrorBody({Errc::kUnknownSink, R"(no sink named "x")"}, false), &out));
  CHECK(out.code == Errc::kUnknownSink);
  CHECK(out.message == R"(no sink named "x")");
}

}  // namespace
}  // namespace ferry::proto

namespace ferry::proto {
namespace {

// Issue 10, defect 8: what ingest writes to the journal keeps the payload's bytes.
TEST_CASE("EventRequest writes each envelope with its payload as received",
          "[messages][fidelity]") {
  const std::string ev1 =
      R"({"id":"aa","ts":1,"source":"s","kind":"k","payload":{"n":123456789012345678901234567890}})";
  const std::string ev2 = R"({"id":"bb","ts":2,"source":"s","kind":"k"})";
  const std::string ev3 = R"({"id":"cc","ts":3,"source":"s","kind":"k","payload":)" +
                          std::string(300, '[') + std::string(300, ']') + "}";
  const std::string body = R"({"v":1,"events":[)" + ev1 + "," + ev2 + "," + ev3 + "]}";
  EventRequest req;
  Error error;
  REQUIRE(req.Parse(FrameType::kEventBatch, body, 10, &error));
  REQUIRE(req.size() == 3);
  auto written = [&](size_t i) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    req.WriteEnvelope(i, w);
    return std::string(sb.GetString(), sb.GetSize());
  };
  CHECK(written(0) == ev1);
  CHECK(written(1) == ev2);
  CHECK(written(2) ==
        R"({"id":"cc","ts":3,"source":"s","kind":"k","payload_encoding":"text","payload":")" +
            std::string(300, '[') + std::string(300, ']') + "\"}");
  CHECK(req.payload_too_deep(2));
  CHECK_FALSE(req.payload_too_deep(0));
}

}  // namespace
}  // namespace ferry::proto

namespace ferry::proto {
namespace {

// EventRequest::AsReceived hands back an event's bytes (ingest then journals them as they are)
// only when they are what proto::WriteEnvelope would write. Random envelopes (field order,
// escapes, white space, numbers in every form, payloads compact and not) in EVENT and
// EVENT_BATCH frames: every event it takes must be byte for byte WriteEnvelope's, and both
// answers must come often.
TEST_CASE("EventRequest::AsReceived: the bytes received exactly when WriteEnvelope agrees",
          "[messages][fidelity]") {
  std::mt19937 rng(20261204);
  auto pick = [&](const std::vector<std::string>& from) {
    return from[std::uniform_int_distribution<size_t>(0, from.size() - 1)(rng)];
  };
  auto chance = [&](int percent) {
    return std::uniform_int_distribution<int>(0, 99)(rng) < percent;
  };
  const std::vector<std::string> ws = {"", "", "", "", " ", "\n", "\t ", "\r\n"};
  const std::vector<std::string> text = {"abc",
                                         "a b",
                                         "\xc3\xa9t\xc3\xa9",
                                         "x\\ny",
                                         "q\\\"q",
                                         "\\u00e9",
                                         "a\\/b",
                                         "/tmp/x",
                                         "\\\\",
                                         "",
                                         "ls -la",
                                         "\\t",
                                         "\xe2\x80\x9c",
                                         "\\u0041",
                                         "plain",
                                         "/home/u/src",
                                         "x_y",
                                         "Bash",
                                         "\xe2\x84\xaa",
                                         "a-b.c"};
  const std::vector<std::string> ints = {
      "0", "1", "42", "1700000000000000000", "4242", "18446744073709551615", "9223372036854775807"};
  const std::vector<std::string> numbers = {"0",
                                            "-1",
                                            "42",
                                            "1.50",
                                            "1e3",
                                            "-0",
                                            "0.0",
                                            "18446744073709551616",
                                            "-9223372036854775809",
                                            "123456789012345678901234567890"};
  std::function<std::string(int)> value = [&](int depth) -> std::string {
    const int kind = std::uniform_int_distribution<int>(0, depth > 2 ? 3 : 5)(rng);
    switch (kind) {
      case 0:
        return "\"" + pick(text) + "\"";
      case 1:
        return pick(numbers);
      case 2:
        return pick({"true", "false", "null"});
      case 3:
        return "\"" + pick(text) + pick(text) + "\"";
      case 4: {
        std::string s = "{" + pick(ws);
        for (int n = std::uniform_int_distribution<int>(0, 3)(rng), k = 0; k < n; ++k) {
          s += (k ? "," + pick(ws) : "") + "\"" + pick(text) + "\"" + pick(ws) + ":" + pick(ws) +
               value(depth + 1);
        }
        return s + pick(ws) + "}";
      }
      default: {
        std::string s = "[" + pick(ws);
        for (int n = std::uniform_int_distribution<int>(0, 3)(rng), k = 0; k < n; ++k) {
          s += (k ? "," + pick(ws) : "") + value(depth + 1) + pick(ws);
        }
        return s + "]";
      }
    }
  };
  // A third of the envelopes are written as the ferry client writes them (plain strings,
  // integers, canonical order, compact), their payloads still random.
  const std::vector<std::string> plain = {"abc",  "plain", "/home/u/src",       "x_y",
                                          "Bash", "a-b.c", "\xc3\xa9t\xc3\xa9", ""};
  auto envelope = [&]() {
    const bool clean = chance(33);
    auto str = [&] { return "\"" + pick(clean ? plain : text) + "\""; };
    std::vector<std::pair<std::string, std::string>> fields = {
        {"id", "\"" + pick({"0123456789abcdef0123456789abcdef", "a1", "A-b"}) + "\""},
        {"ts", clean || chance(90) ? pick(ints) : pick(numbers)},
        {"source", "\"" + pick({"claude", "zsh", "cla\\u0075de", "bash"}) + "\""},
        {"kind", "\"" + pick({"command", "PreToolUse", "x y"}) + "\""}};
    if (chance(70)) fields.emplace_back("session", str());
    if (chance(70)) fields.emplace_back("cwd", str());
    if (chance(50)) fields.emplace_back("host", str());
    if (chance(50)) fields.emplace_back("pid", clean || chance(90) ? pick(ints) : pick(numbers));
    if (chance(10)) fields.emplace_back("truncated", pick({"true", "false"}));
    if (chance(70)) fields.emplace_back("payload", value(0));
    if (!clean && chance(10)) std::shuffle(fields.begin(), fields.end(), rng);
    std::string s = "{" + (!clean && chance(10) ? pick(ws) : "");
    for (size_t k = 0; k < fields.size(); ++k) {
      const bool loose = !clean && chance(5);
      s += (k ? "," : "") + std::string(loose ? " " : "") + "\"" + fields[k].first + "\"" +
           (loose ? " : " : ":") + fields[k].second;
    }
    return s + (!clean && chance(5) ? " }" : "}");
  };
  size_t as_received = 0, rewritten = 0, refused = 0;
  for (int round = 0; round < 4000; ++round) {
    const bool batch = chance(50);
    std::vector<std::string> envs;
    for (int n = batch ? std::uniform_int_distribution<int>(1, 5)(rng) : 1; n > 0; --n) {
      envs.push_back(envelope());
    }
    const std::string body = batch ? BatchBody(envs) : EventBody(envs[0]);
    EventRequest req;
    Error error;
    if (!req.Parse(batch ? FrameType::kEventBatch : FrameType::kEvent, body, kMaxBatch, &error)) {
      ++refused;
      continue;
    }
    for (size_t i = 0; i < req.size(); ++i) {
      INFO(body);
      rapidjson::StringBuffer reference;
      JsonWriter rw(reference);
      WriteEnvelope(req.at(i), rw, req.payload_json(i), req.payload_too_deep(i));
      const std::string_view copy = req.AsReceived(i);
      const bool copied = !copy.empty();
      if (copied) {
        REQUIRE(copy == std::string_view(reference.GetString(), reference.GetSize()));
        REQUIRE(copy == envs[i]);  // the span is the envelope's bytes
      }
      (copied ? as_received : rewritten)++;
    }
  }
  INFO("as received " << as_received << ", rewritten " << rewritten << ", refused " << refused);
  CHECK(as_received > 500);
  CHECK(rewritten > 500);
  CHECK(refused < 4000 / 2);
}

}  // namespace
}  // namespace ferry::proto
