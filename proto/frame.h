// Socket framing shared by ferry and ferryd. Spec: docs/protocol.md.
//
//   frame := u32 length (little endian) | u8 type | body
//   length counts the type byte and the body, so a frame occupies 4 + length bytes.
//   body   := one JSON object (UTF-8)
//
// Pure functions, no I/O, no allocation on the decode path: safe from any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "proto/errors.h"

namespace ferry::proto {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr size_t kLengthSize = 4;
inline constexpr size_t kHeaderSize = 5;  // length + type
inline constexpr size_t kDefaultMaxFrame = 4u << 20;

enum class FrameType : uint8_t {
  kHello = 1,       // either way: {"v":1, "client"|"server": "name/version"}
  kEvent = 2,       // client -> daemon: {"v":1, "durable"?:bool, "event":{envelope}}
  kEventBatch = 3,  // client -> daemon: {"v":1, "durable"?:bool, "events":[envelope...]}
  kAck = 4,         // daemon -> client: {"first_seq":N, "last_seq":M, "durable":bool}
  kError = 5,       // daemon -> client: {"code":"...", "message":"...", "fatal":bool}
  kStatusReq = 6,   // client -> daemon: {"v":1}
  kStatus = 7,      // daemon -> client: the status object (docs/protocol.md)
  // client -> daemon: `ferry tail` ({"v":1, "from"?, "follow"?, "source"?, ...}); the
  // connection then belongs to a tail worker (docs/protocol.md "Tail")
  kTailReq = 8,
  // daemon -> client: one per record, skipped range, waiting note or end of replay
  kTailItem = 9,
  kFlushReq = 10,  // client -> daemon: `ferry flush` (docs/protocol.md)
  // client -> daemon: {"v":1, "sql":"...", "limit"?:N}
  kQueryReq = 11,
  // daemon -> client: {"columns":[..], "rows":[[..]..], "truncated":bool, ...}
  kQueryResult = 12,
  // daemon -> client: {"target_seq":N, "done":bool, "timed_out":bool, "sinks":[...]}
  kFlushResult = 13,
  // client -> daemon: {"v":1, "op":"list"|"replay"|"purge", "sink"?:S}
  kDeadletterReq = 14,
  // daemon -> client: {"op":"...", "sinks":[{"name":S, "queued"|"purged":N}]}, or for
  // "list" {"op":"list", "sinks":[{"name", "count", "letters":[...], ...}]} (docs/sinks.md)
  kDeadletterResult = 15,
  // client -> daemon: `ferry transcript` (proto/transcript.h, docs/protocol.md "Transcripts")
  kTranscriptReq = 16,
  // daemon -> client: one page of an archived transcript, or not found / ambiguous
  kTranscriptResult = 17,
};

// True for every type this build knows; anything else is a protocol error.
bool IsKnownFrameType(uint8_t type);
const char* FrameTypeName(FrameType type);

// A decoded frame. `body` points into the caller's buffer and is valid as long as it is.
struct Frame {
  FrameType type = FrameType::kHello;
  std::string_view body;
  size_t size = 0;  // bytes consumed from the buffer, header included
};

enum class DecodeResult { kNeedMore, kFrame, kError };

// Looks at the start of `buf`. Returns kFrame with `*frame` filled when a whole frame is
// there, kNeedMore when more bytes are needed, or kError with `*error` saying what is wrong
// (oversized or empty length, unknown type). A length over `max_frame` is refused as soon as
// the four length bytes are in, before any body is buffered: the length is never trusted.
DecodeResult DecodeFrame(std::string_view buf, size_t max_frame, Frame* frame, Error* error);

// Appends one encoded frame to `out`.
void AppendFrame(std::string& out, FrameType type, std::string_view body);
// The kHeaderSize bytes that go before a frame's body (for senders that write header and
// body from separate buffers, e.g. with writev).
void EncodeFrameHeader(char* out, FrameType type, size_t body_size);
std::string EncodeFrame(FrameType type, std::string_view body);

void PutU32Le(char* p, uint32_t v);
uint32_t GetU32Le(const char* p);

}  // namespace ferry::proto
