// The event envelope (docs/protocol.md, "Event envelope") and the JSON helpers both
// binaries share. No I/O; safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "proto/errors.h"

namespace ferry::proto {

using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

// A Document whose first allocations come from a buffer inside it (on the caller's stack)
// instead of rapidjson's 64 KiB first chunk: that chunk moves the heap's top on, so what a
// short-lived client allocates after it lands in fresh pages, a page fault each
// (docs/benchmarks.md "Run M"). Larger input spills to chunks of `kSpill` bytes.
template <size_t kBytes, size_t kSpill = 2 * kBytes>
class StackDocument {
 public:
  StackDocument() = default;
  StackDocument(const StackDocument&) = delete;
  StackDocument& operator=(const StackDocument&) = delete;
  rapidjson::Document& doc() { return doc_; }

 private:
  char buffer_[kBytes];
  rapidjson::MemoryPoolAllocator<> pool_{buffer_, kBytes, kSpill};
  rapidjson::Document doc_{&pool_, 256};
};

// Nesting deeper than this is refused: it keeps every recursive walk (serialisation,
// comparison) far from the end of the stack, whatever a peer sends.
inline constexpr int kMaxJsonDepth = 256;
// Levels around a payload in the deepest body that carries one (EVENT_BATCH: the body, its
// "events" array, the envelope). A payload nested at most this deep fits every frame, spool
// line and journal record within kMaxJsonDepth; the client and ferryd both apply it, and a
// deeper payload is kept as text (payload_encoding "text"), never refused.
inline constexpr int kEnvelopeLevels = 3;
inline constexpr int kMaxPayloadDepth = kMaxJsonDepth - kEnvelopeLevels;
inline constexpr size_t kMaxIdLength = 64;
inline constexpr size_t kMaxNameLength = 128;     // source, kind
inline constexpr size_t kMaxStringLength = 4096;  // session, cwd, host

// True when `text` holds a backslash, 'u' and 'd' or 'D' in a row: the start of a \u escape
// of a UTF-16 surrogate, or (rarely) an escaped backslash before such text. False means no
// string in it can decode to a surrogate.
bool MayHoldSurrogateEscape(std::string_view text);

// Parses `text` as one UTF-8 JSON value, iteratively (no recursion) and with a nesting
// limit. On failure fills `*error` (kBadJson) with the byte offset and reason.
bool ParseJson(std::string_view text, rapidjson::Document* doc, Error* error);
// ParseJson with the payload's nesting limit, kMaxPayloadDepth: true when ferryd takes `text`
// as a JSON payload. The specification of ScanPayloadJson, which the client runs instead
// (tests/unit/payload_scan_test.cc and the event fuzzer compare the two).
bool ParsePayloadJson(std::string_view text, rapidjson::Document* doc, Error* error);

// A top-level member ScanPayloadJson's caller wants: its value when a string, or with
// first_element the first element of its array value when that is a string.
struct WantedMember {
  std::string_view name;
  bool first_element = false;
};
// ParsePayloadJson without building a document (the same verdict and error), for a caller
// that needs a few top-level members: values[i] gets wanted[i]'s string from the first member
// of that name in a top-level object (as FindMember finds it), and stays empty when there is
// none, it is not a string (or an array starting with one), or `text` is no object. The hook
// path's check (`ferry emit`): a 20 KB payload is not copied into a document. At most 32
// names; values holds wanted.size() strings. Any thread.
bool ScanPayloadJson(std::string_view text, std::span<const WantedMember> wanted,
                     std::string* values, Error* error);

// Where one envelope's payload is in the text it was parsed from (ParseEnvelopes).
struct PayloadSpan {
  size_t begin = 0, end = 0;  // byte offsets of the payload's JSON value; equal: no payload
  bool too_deep = false;      // nested deeper than kMaxPayloadDepth
  size_t object_begin = 0, object_end = 0;  // byte offsets of the whole envelope object
  bool present() const { return end > begin; }
};

// ParseJson for a text holding envelopes, the objects at `envelope_depth` (1: the root, as in
// a journal record; 2: {"event":{...}} or a TAIL_ITEM; 3: {"events":[{...}]}). *spans gets one
// entry per object at that depth, in document order, with the bytes of its "payload" member,
// so the payload can be written back exactly as sent (numbers keep every digit; see
// WriteEnvelope). The nesting limit counts the envelope's levels, except that a payload may
// nest deeper than kMaxPayloadDepth: then its span says too_deep and the document holds null
// for its containers beyond that depth (the event is kept with its payload as text).
bool ParseEnvelopes(std::string_view text, int envelope_depth, rapidjson::Document* doc,
                    std::vector<PayloadSpan>* spans, Error* error);

// Makes `doc` ready to be parsed into again. rapidjson's pool allocator frees nothing until it
// is cleared (a new Parse only drops the old root), so one document reused for event after
// event keeps every one it parsed: this drops the value and clears the pool once the pool
// holds more than `keep` bytes. Values of `doc` are invalid afterwards.
void RecycleDocument(rapidjson::Document* doc, size_t keep);

// `json` (one valid JSON value) without the whitespace between its tokens; every other byte,
// inside strings and numbers, as it is.
std::string CompactJson(std::string_view json);
// True when `json` (one valid JSON value) has no whitespace between its tokens, so CompactJson
// would return it unchanged (the common case: clients and the journal write compact JSON).
bool IsCompactJson(std::string_view json);

// Checks one envelope object: required id, ts, source, kind; optional session, cwd, host,
// pid, payload, truncated, orig_size, payload_encoding ("text"), source_claimed; nothing else.
// `where` prefixes the field name in messages ("event" or "events[3]").
bool ValidateEnvelope(const rapidjson::Value& event, std::string_view where, Error* error);

// Writes a validated envelope in canonical field order. This is the journal record body.
// `payload_json`, when not empty, is the payload's JSON as received (from a PayloadSpan): it is
// written instead of event["payload"], compacted (CompactJson) so its numbers and strings stay
// byte for byte as sent (a document would turn 123456789012345678901234567890 into
// 1.2345678901234568e29). `payload_as_text`: write `payload_json` as a JSON string holding
// those bytes and flag it payload_encoding "text" (a payload nested too deep). `relabel`, when
// not empty, is written as `source` and the event's own source as `source_claimed` (ferryd's
// source-from-payload rule, docs/hooks.md "Which host sent it"); the event must then have no
// source_claimed of its own.
void WriteEnvelope(const rapidjson::Value& event, JsonWriter& writer,
                   std::string_view payload_json = {}, bool payload_as_text = false,
                   std::string_view relabel = {});

// True when `object`, the bytes a validated envelope `event` was parsed from (with its
// payload's bytes `payload_json` inside them, or empty), is exactly what WriteEnvelope(event,
// writer, payload_json) would write: the fields in canonical order, no white space between
// tokens, no escape outside the payload, integers only. The ferry client writes events so;
// ingest then journals them as received instead of writing them again.
bool WritesAsReceived(const rapidjson::Value& event, std::string_view object,
                      std::string_view payload_json);

// What the client fills in to build an EVENT frame body.
struct EnvelopeFields {
  std::string id;
  int64_t ts = 0;
  std::string_view source;
  std::string_view kind;
  std::string_view session;
  std::string_view cwd;
  std::string_view host;
  int64_t pid = -1;               // -1: omitted
  std::string_view payload_json;  // a complete JSON value, already validated; empty: omitted
  bool truncated = false;
  uint64_t orig_size = 0;
  // "text": the payload is a JSON string holding input that was not JSON; empty: omitted.
  std::string_view payload_encoding;
};

// The body of an EVENT frame: {"v":1,"durable":..,"ephemeral":..,"event":{...}} (each flag
// only when true). String fields are made valid UTF-8 (each invalid byte becomes U+FFFD) and
// cut to their limits at a character boundary, so bytes from the OS (a non-UTF-8 cwd) never
// get the event refused.
std::string BuildEventBody(const EnvelopeFields& fields, bool durable, bool ephemeral = false);

// The same body in three parts, head + payload + tail, so that a client sends a large payload
// from where it lies (sendmsg, an iovec each) instead of copying it into a body first. With
// no payload, `head` is the whole body and the others are empty. `payload` views
// fields.payload_json: it lives as long as that does.
struct EventBodyParts {
  std::string head;
  std::string_view payload;
  std::string_view tail;
  std::string Join() const;  // the body BuildEventBody returns
};
EventBodyParts BuildEventBodyParts(const EnvelopeFields& fields, bool durable,
                                   bool ephemeral = false);

// Returns `s` as valid UTF-8 of at most `max_len` bytes: each byte that does not start a
// valid sequence becomes U+FFFD, and the end is cut at a character boundary.
std::string SanitizeUtf8(std::string_view s, size_t max_len = std::string_view::npos);
// Offset of the first byte of `s` that does not start a valid UTF-8 sequence, or npos.
size_t FirstInvalidUtf8(std::string_view s);

// Returns a new random 128-bit id as 32 lowercase hex characters (getrandom()).
std::string NewEventId();

}  // namespace ferry::proto
