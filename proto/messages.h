// Request and reply bodies for each frame type (docs/protocol.md). No I/O.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/event.h"
#include "proto/frame.h"

namespace ferry::proto {

// A parsed and fully validated EVENT or EVENT_BATCH. Either every event in it is valid
// or the request is refused as a whole: a batch is never half-appended.
class EventRequest {
 public:
  size_t size() const { return single_ ? 1 : (array_ ? array_->Size() : 0); }
  const rapidjson::Value& at(size_t i) const {
    return single_ ? *single_ : (*array_)[static_cast<rapidjson::SizeType>(i)];
  }
  bool durable() const { return durable_; }
  // "ephemeral":true: for live tails only, never journaled (docs/protocol.md "Ephemeral
  // events"). Refused (bad_value) together with "durable":true.
  bool ephemeral() const { return ephemeral_; }
  // The payload of event i as received (its bytes in the parsed body, whitespace and all), or
  // empty when it has none; valid while that body is. Write it with WriteEnvelope (which
  // compacts it), never from at(i)["payload"]: a document does not keep every digit of a number.
  std::string_view payload_json(size_t i) const;
  // Event i's payload nests deeper than kMaxPayloadDepth: it is kept as text.
  bool payload_too_deep(size_t i) const;
  // Event i's bytes as received (the whole envelope object).
  std::string_view event_json(size_t i) const;
  // Event i's bytes when they are exactly what WriteEnvelope(i, writer) writes (canonical
  // already: proto::WritesAsReceived), else empty. The one place ingest decides that an event
  // may be journaled as received (daemon/ingest/event_canon.cc).
  std::string_view AsReceived(size_t i) const;
  // Writes event i as the journal holds it (proto::WriteEnvelope with its payload as received).
  // `relabel`: see proto::WriteEnvelope.
  void WriteEnvelope(size_t i, JsonWriter& writer, std::string_view relabel = {}) const;

  // Parses and validates `body` of a frame of `type` (kEvent or kEventBatch). The payloads
  // refer to `body`, which must outlive their use.
  bool Parse(FrameType type, std::string_view body, size_t max_batch_events, Error* error);

  // Bytes held by the parsed document's allocator (tests check it does not grow with reuse).
  size_t TEST_allocator_bytes() { return doc_.GetAllocator().Size(); }

 private:
  rapidjson::Document doc_;
  std::string_view body_;
  std::vector<PayloadSpan> spans_;  // one per envelope, in order (validated)
  const rapidjson::Value* single_ = nullptr;
  const rapidjson::Value* array_ = nullptr;
  bool durable_ = false;
  bool ephemeral_ = false;
};

// Parses a request body that carries only the version (STATUS_REQ, HELLO, ...).
bool ParseVersionedRequest(std::string_view body, rapidjson::Document* doc, Error* error);

// ACK: {"first_seq":N,"last_seq":M,"durable":bool}. For an ephemeral event (no seq, never
// durable): {"first_seq":0,"last_seq":0,"durable":false,"ephemeral":true,"tails":T}, T the
// live tails it was queued to; it means "accepted for live delivery", nothing more.
struct Ack {
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  bool durable = false;
  bool ephemeral = false;
  uint64_t tails = 0;  // ephemeral only
};

std::string MakeAckBody(const Ack& ack);
bool ParseAckBody(std::string_view body, Ack* ack, Error* error);

// ERROR body: {"code":"...","message":"...","fatal":bool}.
std::string MakeErrorBody(const Error& error, bool fatal);
// Reads an ERROR body back into `*out` (code kInternal if the name is unknown).
bool ParseErrorBody(std::string_view body, Error* out);

std::string MakeStatusRequestBody();

// QUERY_REQ body: {"v":1,"sql":"...","limit":N}; limit 0 means the daemon's cap.
struct QueryRequest {
  std::string sql;
  uint64_t limit = 0;
};
std::string MakeQueryRequestBody(const QueryRequest& request);
bool ParseQueryRequestBody(std::string_view body, QueryRequest* request, Error* error);

// TAIL_REQ: {"v":1, "from"?:N, "last"?:N, "follow"?:bool, "source"?:S, "kind"?:K}.
// Without "from", the tail starts `last` records before the end (default 10).
struct TailRequest {
  uint64_t from = 0;  // 0: not given
  uint64_t last = 10;
  bool follow = false;
  std::string source;  // empty: any
  std::string kind;
};
bool ParseTailRequest(std::string_view body, TailRequest* request, Error* error);
std::string MakeTailRequestBody(const TailRequest& request);

// FLUSH_REQ: {"v":1, "sink"?:S, "wait"?:bool, "timeout_ms"?:N}. Without "sink", every sink.
// The reply is FLUSH_RESULT (docs/protocol.md), or ERROR unknown_sink.
struct FlushRequest {
  std::string sink;  // empty: all sinks
  bool wait = false;
  uint64_t timeout_ms = 0;  // with wait: 0 means no limit
};
std::string MakeFlushRequestBody(const FlushRequest& request);
bool ParseFlushRequestBody(std::string_view body, FlushRequest* request, Error* error);

// DEADLETTER_REQ: {"v":1, "op":"list"|"replay"|"purge", "sink"?:S}. Without "sink", every
// sink. The answer is a DEADLETTER_RESULT (docs/sinks.md "Dead letters over the socket").
struct DeadletterRequest {
  std::string op;    // "list", "replay" or "purge"
  std::string sink;  // empty: all sinks
};
std::string MakeDeadletterRequestBody(const DeadletterRequest& request);
bool ParseDeadletterRequestBody(std::string_view body, DeadletterRequest* request, Error* error);

// One sink of the DEADLETTER_RESULT of op "list":
//   {"op":"list","sinks":[{"name":S,"count":N,"skipped":K,"replaying":R,"truncated":B,
//                          "letters":[<dead-letter line objects, as in the file>],
//                          "error"?:S}]}
// `letters` holds each line as its JSON text; `count` counts every letter in the file even
// when `truncated` cut `letters` short (the answer stays under the frame limit).
struct DeadletterListEntry {
  std::string name;
  std::vector<std::string> letters;  // each one JSON object, as the file holds it
  uint64_t count = 0;                // letters in deadletter/<name>.ndjson
  uint64_t skipped = 0;              // lines that are not JSON objects (a torn last line)
  uint64_t replaying = 0;            // lines of deadletter/<name>.replay.ndjson
  bool truncated = false;
  std::string error;  // the file could not be read
};
std::string MakeDeadletterListResultBody(const std::vector<DeadletterListEntry>& sinks);
// False with *error when `body` is not such a result. Letters that are not objects are
// refused.
bool ParseDeadletterListResultBody(std::string_view body, std::vector<DeadletterListEntry>* sinks,
                                   Error* error);

}  // namespace ferry::proto
