// Fuzz target: the frame decoder (proto/frame.h) and, for each decoded frame, the request or
// reply parser that ferryd's ingest session (daemon/ingest/session.cc) or the client applies
// to its body (proto/messages.h). The input is a byte stream as read from the socket.
//
// Invariants: nothing crashes or reads past the input; DecodeFrame never consumes more than
// it was given nor accepts a frame over its limit; kError always says why; a decoded frame
// re-encodes to exactly the bytes it came from; every prefix of a frame is kNeedMore (or the
// same kError) and never a different frame; a parsed EVENT / EVENT_BATCH has at least one
// event and at most the batch limit.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/frame.h"
#include "proto/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace ferry::proto {
namespace {

constexpr size_t kMaxBatchEvents = 64;

void ParseBody(const Frame& frame) {
  Error error;
  bool ok = false;
  switch (frame.type) {
    case FrameType::kEvent:
    case FrameType::kEventBatch: {
      EventRequest request;
      ok = request.Parse(frame.type, frame.body, kMaxBatchEvents, &error);
      if (ok) {
        FUZZ_CHECK(request.size() >= 1 && request.size() <= kMaxBatchEvents);
        FUZZ_CHECK(frame.type == FrameType::kEventBatch || request.size() == 1);
        for (size_t i = 0; i < request.size(); ++i) {
          Error again;
          FUZZ_CHECK(ValidateEnvelope(request.at(i), "event", &again), again.message);
        }
      }
      break;
    }
    case FrameType::kHello:
    case FrameType::kStatusReq: {
      rapidjson::Document doc;
      ok = ParseVersionedRequest(frame.body, &doc, &error);
      break;
    }
    case FrameType::kAck: {
      Ack ack;
      ok = ParseAckBody(frame.body, &ack, &error);
      if (ok) {
        Ack back;
        FUZZ_CHECK(ParseAckBody(MakeAckBody(ack), &back, &error), error.message);
        FUZZ_CHECK(back.first_seq == ack.first_seq && back.last_seq == ack.last_seq &&
                   back.durable == ack.durable);
      }
      break;
    }
    case FrameType::kError: {
      Error out;
      ParseErrorBody(frame.body, &out);
      return;  // no error contract: an unreadable ERROR body is still an error
    }
    case FrameType::kTailReq: {
      TailRequest request;
      ok = ParseTailRequest(frame.body, &request, &error);
      if (ok) {
        TailRequest back;
        FUZZ_CHECK(ParseTailRequest(MakeTailRequestBody(request), &back, &error), error.message);
        FUZZ_CHECK(back.source == request.source && back.kind == request.kind &&
                   back.follow == request.follow);
      }
      break;
    }
    case FrameType::kFlushReq: {
      FlushRequest request;
      ok = ParseFlushRequestBody(frame.body, &request, &error);
      if (ok) {
        FlushRequest back;
        FUZZ_CHECK(ParseFlushRequestBody(MakeFlushRequestBody(request), &back, &error),
                   error.message);
        FUZZ_CHECK(back.sink == request.sink && back.wait == request.wait);
      }
      break;
    }
    case FrameType::kQueryReq: {
      QueryRequest request;
      ok = ParseQueryRequestBody(frame.body, &request, &error);
      if (ok) {
        QueryRequest back;
        FUZZ_CHECK(ParseQueryRequestBody(MakeQueryRequestBody(request), &back, &error),
                   error.message);
        FUZZ_CHECK(back.sql == request.sql && back.limit == request.limit);
      }
      break;
    }
    case FrameType::kDeadletterReq: {
      DeadletterRequest request;
      ok = ParseDeadletterRequestBody(frame.body, &request, &error);
      if (ok) {
        DeadletterRequest back;
        FUZZ_CHECK(ParseDeadletterRequestBody(MakeDeadletterRequestBody(request), &back, &error),
                   error.message);
        FUZZ_CHECK(back.op == request.op && back.sink == request.sink);
      }
      break;
    }
    default:
      return;  // STATUS, QUERY_RESULT, ...: bodies only the client shows
  }
  if (!ok) FUZZ_CHECK(error.code != Errc::kOk && !error.message.empty(), FrameTypeName(frame.type));
}

void Decode(std::string_view stream, size_t max_frame) {
  size_t pos = 0;
  for (int frames = 0; pos < stream.size() && frames < 256; ++frames) {
    const std::string_view rest = stream.substr(pos);
    Frame frame;
    Error error;
    const DecodeResult result = DecodeFrame(rest, max_frame, &frame, &error);
    if (result == DecodeResult::kNeedMore) {
      // Only a header that is not yet whole, or a body not yet in, may ask for more.
      FUZZ_CHECK(rest.size() < kHeaderSize || GetU32Le(rest.data()) + kLengthSize > rest.size());
      return;
    }
    if (result == DecodeResult::kError) {
      FUZZ_CHECK(error.code != Errc::kOk && !error.message.empty());
      return;
    }
    FUZZ_CHECK(frame.size >= kHeaderSize && frame.size <= rest.size());
    FUZZ_CHECK(frame.size - kLengthSize <= max_frame);
    FUZZ_CHECK(frame.body.size() + kHeaderSize == frame.size);
    FUZZ_CHECK(frame.body.data() == rest.data() + kHeaderSize);
    FUZZ_CHECK(IsKnownFrameType(static_cast<uint8_t>(frame.type)));
    FUZZ_CHECK(EncodeFrame(frame.type, frame.body) == rest.substr(0, frame.size));
    // A peer that sends the same frame in pieces: every prefix is "need more" (or the same
    // error once the header is in), never a frame.
    for (size_t cut = 0; cut < frame.size && cut < 64; ++cut) {
      Frame part;
      Error part_error;
      const DecodeResult r = DecodeFrame(rest.substr(0, cut), max_frame, &part, &part_error);
      FUZZ_CHECK(r == DecodeResult::kNeedMore);
    }
    ParseBody(frame);
    pos += frame.size;
  }
}

}  // namespace
}  // namespace ferry::proto

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // ferryd's default limit, and a small one so that "too large" is reachable.
  ferry::proto::Decode(input, ferry::proto::kDefaultMaxFrame);
  ferry::proto::Decode(input, 1024);
  return 0;
}
