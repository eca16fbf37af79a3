#include "proto/frame.h"

#include <cstring>

namespace ferry::proto {

const char* ErrcName(Errc code) {
  switch (code) {
    case Errc::kOk:
      return "ok";
    case Errc::kFrameTooLarge:
      return "frame_too_large";
    case Errc::kEmptyFrame:
      return "empty_frame";
    case Errc::kUnknownType:
      return "unknown_type";
    case Errc::kUnexpectedType:
      return "unexpected_type";
    case Errc::kBadJson:
      return "bad_json";
    case Errc::kNotObject:
      return "not_object";
    case Errc::kBadVersion:
      return "bad_version";
    case Errc::kMissingField:
      return "missing_field";
    case Errc::kWrongType:
      return "wrong_type";
    case Errc::kBadValue:
      return "bad_value";
    case Errc::kUnknownField:
      return "unknown_field";
    case Errc::kTooManyEvents:
      return "too_many_events";
    case Errc::kPeerRejected:
      return "peer_rejected";
    case Errc::kTooManyConnections:
      return "too_many_connections";
    case Errc::kIdleTimeout:
      return "idle_timeout";
    case Errc::kJournalFailed:
      return "journal_failed";
    case Errc::kShuttingDown:
      return "shutting_down";
    case Errc::kTruncatedFrame:
      return "truncated_frame";
    case Errc::kQueryRefused:
      return "query_refused";
    case Errc::kQueryFailed:
      return "query_failed";
    case Errc::kUnknownSink:
      return "unknown_sink";
    case Errc::kInternal:
      return "internal";
  }
  return "unknown";
}

bool IsKnownFrameType(uint8_t type) { return type >= 1 && type <= 17; }

const char* FrameTypeName(FrameType type) {
  switch (type) {
    case FrameType::kHello:
      return "HELLO";
    case FrameType::kEvent:
      return "EVENT";
    case FrameType::kEventBatch:
      return "EVENT_BATCH";
    case FrameType::kAck:
      return "ACK";
    case FrameType::kError:
      return "ERROR";
    case FrameType::kStatusReq:
      return "STATUS_REQ";
    case FrameType::kStatus:
      return "STATUS";
    case FrameType::kTailReq:
      return "TAIL_REQ";
    case FrameType::kTailItem:
      return "TAIL_ITEM";
    case FrameType::kFlushReq:
      return "FLUSH_REQ";
    case FrameType::kQueryReq:
      return "QUERY_REQ";
    case FrameType::kQueryResult:
      return "QUERY_RESULT";
    case FrameType::kFlushResult:
      return "FLUSH_RESULT";
    case FrameType::kDeadletterReq:
      return "DEADLETTER_REQ";
    case FrameType::kDeadletterResult:
      return "DEADLETTER_RESULT";
    case FrameType::kTranscriptReq:
      return "TRANSCRIPT_REQ";
    case FrameType::kTranscriptResult:
      return "TRANSCRIPT_RESULT";
  }
  return "UNKNOWN";
}

void PutU32Le(char* p, uint32_t v) {
  p[0] = static_cast<char>(v & 0xff);
  p[1] = static_cast<char>((v >> 8) & 0xff);
  p[2] = static_cast<char>((v >> 16) & 0xff);
  p[3] = static_cast<char>((v >> 24) & 0xff);
}

uint32_t GetU32Le(const char* p) {
  const auto* u = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint32_t>(u[0]) | (static_cast<uint32_t>(u[1]) << 8) |
         (static_cast<uint32_t>(u[2]) << 16) | (static_cast<uint32_t>(u[3]) << 24);
}

DecodeResult DecodeFrame(std::string_view buf, size_t max_frame, Frame* frame, Error* error) {
  if (buf.size() < kLengthSize) return DecodeResult::kNeedMore;
  const uint32_t length = GetU32Le(buf.data());
  if (length == 0) {
    error->code = Errc::kEmptyFrame;
    error->message = "frame length is 0; a frame holds at least its type byte";
    return DecodeResult::kError;
  }
  if (length > max_frame) {
    error->code = Errc::kFrameTooLarge;
    error->message = "frame length " + std::to_string(length) + " exceeds the limit of " +
                     std::to_string(max_frame) + " bytes";
    return DecodeResult::kError;
  }
  if (buf.size() < kLengthSize + 1) return DecodeResult::kNeedMore;
  const auto type = static_cast<uint8_t>(buf[kLengthSize]);
  if (!IsKnownFrameType(type)) {
    error->code = Errc::kUnknownType;
    error->message = "unknown frame type " + std::to_string(type);
    return DecodeResult::kError;
  }
  if (buf.size() < kLengthSize + length) return DecodeResult::kNeedMore;
  frame->type = static_cast<FrameType>(type);
  frame->body = buf.substr(kHeaderSize, length - 1);
  frame->size = kLengthSize + length;
  return DecodeResult::kFrame;
}

void EncodeFrameHeader(char* out, FrameType type, size_t body_size) {
  PutU32Le(out, static_cast<uint32_t>(body_size + 1));
  out[kLengthSize] = static_cast<char>(type);
}

void AppendFrame(std::string& out, FrameType type, std::string_view body) {
  const size_t at = out.size();
  out.resize(at + kHeaderSize);
  EncodeFrameHeader(out.data() + at, type, body.size());
  out.append(body);
}

std::string EncodeFrame(FrameType type, std::string_view body) {
  std::string out;
  out.reserve(kHeaderSize + body.size());
  AppendFrame(out, type, body);
  return out;
}

}  // namespace ferry::proto
