// TRANSCRIPT_REQ / TRANSCRIPT_RESULT bodies (`ferry transcript`, docs/protocol.md
// "Transcripts") and the base64 that carries transcript bytes in them (a transcript is bytes,
// not necessarily UTF-8, and a frame body is JSON).
//
//   request: {"v":1, "session":"<id or its start>", "source"?:S, "gen"?:N, "at"?:N}
//   result:  {"status":"ok", "source", "session", "data":"<base64>", "gen":N, "at":N,
//             "done":bool, "damage"?:["<message>", ...]}
//          | {"status":"not_found"|"ambiguous", "message":"..."}
// The first request names the session by a prefix; a result names it in full, and the next
// page is asked for with that session, source, and the result's gen and at, until done.
//
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "proto/errors.h"

namespace ferry::proto {

struct TranscriptRequest {
  std::string session;  // the id, or its start
  std::string source;   // empty: any
  uint32_t gen = 0;     // 0: from the first generation
  uint64_t at = 0;      // byte offset in generation `gen`'s archive file
};
std::string MakeTranscriptRequestBody(const TranscriptRequest& request);
bool ParseTranscriptRequestBody(std::string_view body, TranscriptRequest* request, Error* error);

struct TranscriptResult {
  std::string status;  // "ok", "not_found", "ambiguous"
  std::string message;
  std::string source, session;
  std::string data;  // raw bytes (decoded)
  uint32_t gen = 0;
  uint64_t at = 0;
  bool done = true;
  std::vector<std::string> damage;
};
std::string MakeTranscriptResultBody(const TranscriptResult& result);
bool ParseTranscriptResultBody(std::string_view body, TranscriptResult* result, Error* error);

std::string Base64Encode(std::string_view bytes);
bool Base64Decode(std::string_view text, std::string* bytes);

}  // namespace ferry::proto
