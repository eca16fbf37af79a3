// The wire encoding of ephemeral events (docs/protocol.md "Ephemeral events"): the EVENT /
// EVENT_BATCH flag as the client writes it and ferryd parses it, its refusals, and the ACK.
#include <catch2/catch.hpp>

#include <string>

#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::proto {
namespace {

constexpr size_t kMaxBatch = 10000;
const std::string kEnvelope = R"({"id":"ab","ts":1,"source":"s","kind":"k"})";

Error Refused(FrameType type, const std::string& body) {
  EventRequest request;
  Error error;
  INFO(body);
  CHECK_FALSE(request.Parse(type, body, kMaxBatch, &error));
  return error;
}

}  // namespace

TEST_CASE("ephemeral: BuildEventBody writes the flag, and only when asked",
          "[messages][ephemeral]") {
  EnvelopeFields f;
  f.id = "ab";
  f.ts = 1;
  f.source = "s";
  f.kind = "k";
  f.pid = -1;
  CHECK(BuildEventBody(f, false, true) == R"({"v":1,"ephemeral":true,"event":)" + kEnvelope + "}");
  CHECK(BuildEventBody(f, false, false) == R"({"v":1,"event":)" + kEnvelope + "}");
  CHECK(BuildEventBody(f, false) == R"({"v":1,"event":)" + kEnvelope + "}");

  EventRequest request;
  Error error;
  REQUIRE(request.Parse(FrameType::kEvent, BuildEventBody(f, false, true), kMaxBatch, &error));
  CHECK(request.ephemeral());
  CHECK_FALSE(request.durable());
  REQUIRE(request.Parse(FrameType::kEvent, BuildEventBody(f, false), kMaxBatch, &error));
  CHECK_FALSE(request.ephemeral());  // reset between parses
}

TEST_CASE("ephemeral: EVENT and EVENT_BATCH parse the flag", "[messages][ephemeral]") {
  EventRequest request;
  Error error;
  REQUIRE(
      request.Parse(FrameType::kEventBatch,
                    R"({"v":1,"events":[)" + kEnvelope + "," + kEnvelope + R"(],"ephemeral":true})",
                    kMaxBatch, &error));
  CHECK(request.ephemeral());
  CHECK(request.size() == 2);
  REQUIRE(request.Parse(FrameType::kEvent, R"({"v":1,"ephemeral":false,"event":)" + kEnvelope + "}",
                        kMaxBatch, &error));
  CHECK_FALSE(request.ephemeral());
  // false with durable is fine: only both true contradict.
  REQUIRE(request.Parse(FrameType::kEvent,
                        R"({"v":1,"durable":true,"ephemeral":false,"event":)" + kEnvelope + "}",
                        kMaxBatch, &error));
  CHECK(request.durable());
}

TEST_CASE("ephemeral: refusals", "[messages][ephemeral]") {
  Error e = Refused(FrameType::kEvent,
                    R"({"v":1,"durable":true,"ephemeral":true,"event":)" + kEnvelope + "}");
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message ==
        "an event cannot be both durable and ephemeral (an ephemeral event is never written to "
        "the journal)");
  for (const char* bad : {"1", "\"true\"", "null", "{}"}) {
    e = Refused(FrameType::kEvent,
                std::string(R"({"v":1,"ephemeral":)") + bad + R"(,"event":)" + kEnvelope + "}");
    CHECK(e.code == Errc::kWrongType);
    CHECK(e.message == "ephemeral must be a boolean");
  }
  e = Refused(FrameType::kEvent,
              R"({"v":1,"ephemeral":true,"ephemeral":true,"event":)" + kEnvelope + "}");
  CHECK(e.code == Errc::kBadValue);
  CHECK(e.message == "\"ephemeral\" appears more than once");
}

TEST_CASE("ephemeral: the ACK body", "[messages][ephemeral]") {
  Ack ack;
  ack.ephemeral = true;
  ack.tails = 3;
  CHECK(MakeAckBody(ack) ==
        R"({"first_seq":0,"last_seq":0,"durable":false,"ephemeral":true,"tails":3})");
  Ack out;
  Error error;
  REQUIRE(ParseAckBody(MakeAckBody(ack), &out, &error));
  CHECK(out.ephemeral);
  CHECK(out.tails == 3);
  CHECK(out.last_seq == 0);
  CHECK_FALSE(out.durable);
  // A plain ACK is unchanged and parses as not ephemeral; "tails" means nothing without it.
  CHECK(MakeAckBody(Ack{5, 5, false}) == R"({"first_seq":5,"last_seq":5,"durable":false})");
  REQUIRE(ParseAckBody(R"({"first_seq":5,"last_seq":5,"durable":false,"tails":2})", &out, &error));
  CHECK_FALSE(out.ephemeral);
  CHECK(out.tails == 0);
}

}  // namespace ferry::proto
