// The store writer's one pass over a journal record body: the envelope fields it stores, as
// views into the body, without building a document or copying a byte.
//
// Contract: ScanRecord accepts only what it can read exactly as proto::ParseEnvelopes +
// DOM lookups would (the body is one JSON object; id, source, kind, session, cwd and host,
// when present, are strings without escapes; ts and pid integers that fit int64; no control
// byte inside a string). Anything else — escapes in those fields, non-integer numbers,
// trailing bytes, a body that is not an object — returns false, and the caller parses the
// record with the full parser (which also decides whether it is malformed). Journal records
// are written by ingest in canonical form (proto::WriteEnvelope), so the fallback is rare.
// The payload is not validated beyond its brackets and strings: journal records were
// validated by ingest before they were appended and are CRC-checked by the reader.
//
// Threads: pure function; any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "proto/event.h"

namespace ferry::store {

struct ScannedEnvelope {
  std::string_view id, source, kind, session, cwd, host;
  bool has_ts = false, has_pid = false, has_payload = false;
  int64_t ts = 0, pid = 0;
  std::string_view payload;     // the payload value's bytes, as in the record
  bool payload_compact = true;  // false: whitespace between its tokens (CompactJson it)
  // The payload object's exit_status / exit_code / exitCode (first of each) is a non-zero
  // number.
  bool payload_failure = false;
};

// Fills *out from `body`; false: use the full parser instead (see the contract above).
bool ScanRecord(std::string_view body, ScannedEnvelope* out);

// What a document reused record after record may keep in its pool between records.
inline constexpr size_t kKeepParsePool = 1u << 20;

// The full parser, for the records ScanRecord leaves to it (moved here from writer.cc). The
// views point into *doc or into `body` (valid until the next call with the same *doc). false:
// the record is not an event.
bool ParseRecordSlow(std::string_view body, rapidjson::Document* doc,
                     std::vector<proto::PayloadSpan>* spans, ScannedEnvelope* out);

}  // namespace ferry::store
