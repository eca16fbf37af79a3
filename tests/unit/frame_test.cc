// Worked example (docs/protocol.md "Worked example"): the EVENT frame that
//   ferry emit --source zsh --kind command --data '{"cmd":"ls"}'
// sends with id 00112233445566778899aabbccddeeff and ts 1700000000000000000 (no host, cwd or
// pid). Body 137 bytes, frame 142 bytes (length 0x8a = 138 = 1 type byte + 137 body bytes):
//
//   8a 00 00 00 02 7b 22 76 22 3a 31 2c 22 65 76 65
//   6e 74 22 3a 7b 22 69 64 22 3a 22 30 30 31 31 32
//   32 33 33 34 34 35 35 36 36 37 37 38 38 39 39 61
//   61 62 62 63 63 64 64 65 65 66 66 22 2c 22 74 73
//   22 3a 31 37 30 30 30 30 30 30 30 30 30 30 30 30
//   30 30 30 30 30 2c 22 73 6f 75 72 63 65 22 3a 22
//   7a 73 68 22 2c 22 6b 69 6e 64 22 3a 22 63 6f 6d
//   6d 61 6e 64 22 2c 22 70 61 79 6c 6f 61 64 22 3a
//   7b 22 63 6d 64 22 3a 22 6c 73 22 7d 7d 7d
//
// The ACK for it (seq 42), 51 bytes:
//
//   2f 00 00 00 04 7b 22 66 69 72 73 74 5f 73 65 71
//   22 3a 34 32 2c 22 6c 61 73 74 5f 73 65 71 22 3a
//   34 32 2c 22 64 75 72 61 62 6c 65 22 3a 66 61 6c
//   73 65 7d
#include "proto/frame.h"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::proto {
namespace {

// "8a 00 02" -> the three bytes; whitespace is ignored.
std::string FromHex(std::string_view hex) {
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  std::string out;
  int high = -1;
  for (char c : hex) {
    const int n = nibble(c);
    if (n < 0) continue;
    if (high < 0) {
      high = n;
    } else {
      out.push_back(static_cast<char>((high << 4) | n));
      high = -1;
    }
  }
  return out;
}

constexpr std::string_view kWorkedFrameHex =
    "8a 00 00 00 02 7b 22 76 22 3a 31 2c 22 65 76 65"
    "6e 74 22 3a 7b 22 69 64 22 3a 22 30 30 31 31 32"
    "32 33 33 34 34 35 35 36 36 37 37 38 38 39 39 61"
    "61 62 62 63 63 64 64 65 65 66 66 22 2c 22 74 73"
    "22 3a 31 37 30 30 30 30 30 30 30 30 30 30 30 30"
    "30 30 30 30 30 2c 22 73 6f 75 72 63 65 22 3a 22"
    "7a 73 68 22 2c 22 6b 69 6e 64 22 3a 22 63 6f 6d"
    "6d 61 6e 64 22 2c 22 70 61 79 6c 6f 61 64 22 3a"
    "7b 22 63 6d 64 22 3a 22 6c 73 22 7d 7d 7d";

constexpr std::string_view kWorkedBody =
    R"({"v":1,"event":{"id":"00112233445566778899aabbccddeeff","ts":1700000000000000000,)"
    R"("source":"zsh","kind":"command","payload":{"cmd":"ls"}}})";

constexpr std::string_view kWorkedAckHex =
    "2f 00 00 00 04 7b 22 66 69 72 73 74 5f 73 65 71"
    "22 3a 34 32 2c 22 6c 61 73 74 5f 73 65 71 22 3a"
    "34 32 2c 22 64 75 72 61 62 6c 65 22 3a 66 61 6c"
    "73 65 7d";

std::string WorkedBody() {
  EnvelopeFields f;
  f.id = "00112233445566778899aabbccddeeff";
  f.ts = 1700000000000000000;
  f.source = "zsh";
  f.kind = "command";
  f.payload_json = R"({"cmd":"ls"})";
  return BuildEventBody(f, /*durable=*/false);
}

const std::vector<FrameType> kAllTypes = {
    FrameType::kHello,    FrameType::kEvent,     FrameType::kEventBatch, FrameType::kAck,
    FrameType::kError,    FrameType::kStatusReq, FrameType::kStatus,     FrameType::kTailReq,
    FrameType::kTailItem, FrameType::kFlushReq};

}  // namespace

TEST_CASE("worked example: EVENT frame bytes are exact", "[frame]") {
  const std::string body = WorkedBody();
  CHECK(body == kWorkedBody);
  CHECK(body.size() == 137);
  const std::string frame = EncodeFrame(FrameType::kEvent, body);
  CHECK(frame.size() == 142);
  CHECK(frame == FromHex(kWorkedFrameHex));

  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(frame, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kFrame);
  CHECK(decoded.type == FrameType::kEvent);
  CHECK(decoded.size == 142);
  CHECK(decoded.body == kWorkedBody);

  EventRequest request;
  REQUIRE(request.Parse(decoded.type, decoded.body, 10000, &error));
  REQUIRE(request.size() == 1);
  CHECK_FALSE(request.durable());
}

TEST_CASE("worked example: ACK frame bytes are exact", "[frame]") {
  const std::string frame = EncodeFrame(FrameType::kAck, MakeAckBody(Ack{42, 42, false}));
  CHECK(frame.size() == 51);
  CHECK(frame == FromHex(kWorkedAckHex));
}

TEST_CASE("encode/decode round trip for every frame type", "[frame]") {
  const FrameType type = GENERATE(from_range(kAllTypes));
  const std::string body = GENERATE(as<std::string>{}, "", "{}", R"({"v":1})",
                                    std::string(1000, 'x'), std::string("\0\xff\x01", 3));
  CAPTURE(FrameTypeName(type), body.size());
  const std::string frame = EncodeFrame(type, body);
  REQUIRE(frame.size() == kHeaderSize + body.size());
  CHECK(GetU32Le(frame.data()) == body.size() + 1);
  CHECK(static_cast<uint8_t>(frame[4]) == static_cast<uint8_t>(type));

  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(frame, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kFrame);
  CHECK(decoded.type == type);
  CHECK(decoded.body == body);
  CHECK(decoded.size == frame.size());
  CHECK(error.ok());
  // The body is a view into the caller's buffer, not a copy.
  CHECK(decoded.body.data() == frame.data() + kHeaderSize);
}

TEST_CASE("frame type names and known types", "[frame]") {
  CHECK(std::string(FrameTypeName(FrameType::kHello)) == "HELLO");
  CHECK(std::string(FrameTypeName(FrameType::kEvent)) == "EVENT");
  CHECK(std::string(FrameTypeName(FrameType::kEventBatch)) == "EVENT_BATCH");
  CHECK(std::string(FrameTypeName(FrameType::kAck)) == "ACK");
  CHECK(std::string(FrameTypeName(FrameType::kError)) == "ERROR");
  CHECK(std::string(FrameTypeName(FrameType::kStatusReq)) == "STATUS_REQ");
  CHECK(std::string(FrameTypeName(FrameType::kStatus)) == "STATUS");
  CHECK(std::string(FrameTypeName(FrameType::kTailReq)) == "TAIL_REQ");
  CHECK(std::string(FrameTypeName(FrameType::kTailItem)) == "TAIL_ITEM");
  CHECK(std::string(FrameTypeName(FrameType::kFlushReq)) == "FLUSH_REQ");
  CHECK(std::string(FrameTypeName(FrameType::kQueryReq)) == "QUERY_REQ");
  CHECK(std::string(FrameTypeName(FrameType::kQueryResult)) == "QUERY_RESULT");
  CHECK(std::string(FrameTypeName(FrameType::kFlushResult)) == "FLUSH_RESULT");
  CHECK(std::string(FrameTypeName(FrameType::kDeadletterReq)) == "DEADLETTER_REQ");
  CHECK(std::string(FrameTypeName(FrameType::kDeadletterResult)) == "DEADLETTER_RESULT");
  for (int t = 0; t < 256; ++t) {
    CAPTURE(t);
    CHECK(IsKnownFrameType(static_cast<uint8_t>(t)) == (t >= 1 && t <= 17));
  }
}

TEST_CASE("AppendFrame appends after existing bytes", "[frame]") {
  std::string out = "prefix";
  AppendFrame(out, FrameType::kStatusReq, R"({"v":1})");
  CHECK(out == "prefix" + EncodeFrame(FrameType::kStatusReq, R"({"v":1})"));
}

TEST_CASE("PutU32Le/GetU32Le are little endian", "[frame]") {
  char b[4];
  PutU32Le(b, 0x01020304u);
  CHECK(std::string(b, 4) == std::string("\x04\x03\x02\x01", 4));
  CHECK(GetU32Le(b) == 0x01020304u);
  PutU32Le(b, 0xFFFFFFFFu);
  CHECK(GetU32Le(b) == 0xFFFFFFFFu);
  PutU32Le(b, 0x80000000u);
  CHECK(std::string(b, 4) == std::string("\x00\x00\x00\x80", 4));
  CHECK(GetU32Le(b) == 0x80000000u);
}

TEST_CASE("every proper prefix of a valid frame needs more", "[frame]") {
  const std::string frame = FromHex(kWorkedFrameHex);
  const size_t cut = GENERATE_COPY(range(size_t{0}, frame.size()));
  Frame decoded;
  Error error;
  CAPTURE(cut);
  CHECK(DecodeFrame(std::string_view(frame.data(), cut), kDefaultMaxFrame, &decoded, &error) ==
        DecodeResult::kNeedMore);
  CHECK(error.ok());
}

TEST_CASE("a frame whose length is exactly the limit is accepted", "[frame]") {
  const size_t max_frame = 64;
  const std::string body(max_frame - 1, 'b');
  const std::string frame = EncodeFrame(FrameType::kEvent, body);
  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(frame, max_frame, &decoded, &error) == DecodeResult::kFrame);
  CHECK(decoded.body == body);
  // One byte more is refused.
  const std::string big = EncodeFrame(FrameType::kEvent, body + "b");
  CHECK(DecodeFrame(big, max_frame, &decoded, &error) == DecodeResult::kError);
  CHECK(error.code == Errc::kFrameTooLarge);
  CHECK(error.message == "frame length 65 exceeds the limit of 64 bytes");
}

TEST_CASE("length 0 is refused", "[frame]") {
  const std::string buf("\0\0\0\0", 4);
  Frame decoded;
  Error error;
  CHECK(DecodeFrame(buf, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kError);
  CHECK(error.code == Errc::kEmptyFrame);
  CHECK(std::string(ErrcName(error.code)) == "empty_frame");
  CHECK(error.message == "frame length is 0; a frame holds at least its type byte");
}

TEST_CASE("length 1 (type byte only, empty body) is a frame", "[frame]") {
  const std::string buf("\x01\0\0\0\x06", 5);
  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(buf, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kFrame);
  CHECK(decoded.type == FrameType::kStatusReq);
  CHECK(decoded.body.empty());
  CHECK(decoded.size == 5);
}

TEST_CASE("length over the limit is refused as soon as 4 bytes are in", "[frame]") {
  // 4 MiB + 1 = 4194305 = 0x00400001.
  const std::string length_only("\x01\x00\x40\x00", 4);
  Frame decoded;
  Error error;
  for (size_t n = 0; n < 4; ++n) {
    CHECK(DecodeFrame(length_only.substr(0, n), kDefaultMaxFrame, &decoded, &error) ==
          DecodeResult::kNeedMore);
  }
  REQUIRE(DecodeFrame(length_only, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kError);
  CHECK(error.code == Errc::kFrameTooLarge);
  CHECK(std::string(ErrcName(error.code)) == "frame_too_large");
  CHECK(error.message == "frame length 4194305 exceeds the limit of 4194304 bytes");

  // The exact limit is fine and waits for the type byte and the body.
  const std::string at_limit("\x00\x00\x40\x00", 4);
  CHECK(DecodeFrame(at_limit, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kNeedMore);
  CHECK(DecodeFrame(at_limit + "\x02{", kDefaultMaxFrame, &decoded, &error) ==
        DecodeResult::kNeedMore);
}

TEST_CASE("length 0xFFFFFFFF is refused", "[frame]") {
  const std::string buf("\xff\xff\xff\xff", 4);
  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(buf, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kError);
  CHECK(error.code == Errc::kFrameTooLarge);
  CHECK(error.message == "frame length 4294967295 exceeds the limit of 4194304 bytes");
  // Even with a limit as large as the length field can express, the length is checked
  // against what is buffered: never a read past the end.
  CHECK(DecodeFrame(buf + "\x02", SIZE_MAX, &decoded, &error) == DecodeResult::kNeedMore);
}

TEST_CASE("unknown type byte is refused", "[frame]") {
  const int type = GENERATE(0, 18, 127, 128, 255);
  std::string buf = EncodeFrame(FrameType::kEvent, "{}");
  buf[4] = static_cast<char>(type);
  Frame decoded;
  Error error;
  CAPTURE(type);
  // Refused as soon as the type byte is in, before the body.
  REQUIRE(DecodeFrame(buf.substr(0, 5), kDefaultMaxFrame, &decoded, &error) ==
          DecodeResult::kError);
  CHECK(error.code == Errc::kUnknownType);
  CHECK(std::string(ErrcName(error.code)) == "unknown_type");
  CHECK(error.message == "unknown frame type " + std::to_string(type));
  CHECK(DecodeFrame(buf, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kError);
}

TEST_CASE("two frames back to back decode one after the other", "[frame]") {
  std::string buf;
  AppendFrame(buf, FrameType::kEvent, kWorkedBody);
  AppendFrame(buf, FrameType::kStatusReq, R"({"v":1})");
  buf += "\x09";  // a first byte of a third frame

  Frame first;
  Error error;
  REQUIRE(DecodeFrame(buf, kDefaultMaxFrame, &first, &error) == DecodeResult::kFrame);
  CHECK(first.type == FrameType::kEvent);
  CHECK(first.body == kWorkedBody);
  CHECK(first.size == 142);

  std::string_view rest = std::string_view(buf).substr(first.size);
  Frame second;
  REQUIRE(DecodeFrame(rest, kDefaultMaxFrame, &second, &error) == DecodeResult::kFrame);
  CHECK(second.type == FrameType::kStatusReq);
  CHECK(second.body == R"({"v":1})");
  CHECK(second.size == kHeaderSize + 7);

  rest = rest.substr(second.size);
  Frame third;
  CHECK(DecodeFrame(rest, kDefaultMaxFrame, &third, &error) == DecodeResult::kNeedMore);
}

TEST_CASE("the decoder consumes exactly one frame and ignores what follows", "[frame]") {
  // Whatever follows a complete frame (even garbage) is the next frame's business.
  std::string buf = EncodeFrame(FrameType::kEvent, kWorkedBody) + "\xff\xff\xff\xff garbage";
  Frame decoded;
  Error error;
  REQUIRE(DecodeFrame(buf, kDefaultMaxFrame, &decoded, &error) == DecodeResult::kFrame);
  CHECK(decoded.size == 142);
  CHECK(decoded.body == kWorkedBody);
}

TEST_CASE("error code names are stable", "[frame]") {
  const std::vector<std::pair<Errc, std::string>> names = {
      {Errc::kOk, "ok"},
      {Errc::kFrameTooLarge, "frame_too_large"},
      {Errc::kEmptyFrame, "empty_frame"},
      {Errc::kUnknownType, "unknown_type"},
      {Errc::kUnexpectedType, "unexpected_type"},
      {Errc::kBadJson, "bad_json"},
      {Errc::kNotObject, "not_object"},
      {Errc::kBadVersion, "bad_version"},
      {Errc::kMissingField, "missing_field"},
      {Errc::kWrongType, "wrong_type"},
      {Errc::kBadValue, "bad_value"},
      {Errc::kUnknownField, "unknown_field"},
      {Errc::kTooManyEvents, "too_many_events"},
      {Errc::kPeerRejected, "peer_rejected"},
      {Errc::kTooManyConnections, "too_many_connections"},
      {Errc::kIdleTimeout, "idle_timeout"},
      {Errc::kJournalFailed, "journal_failed"},
      {Errc::kShuttingDown, "shutting_down"},
      {Errc::kInternal, "internal"},
  };
  for (const auto& [code, name] : names) CHECK(ErrcName(code) == name);
}

}  // namespace ferry::proto
