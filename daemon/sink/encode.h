// The bodies ferryd sends upstream, and the pieces around them: http-json and OTLP/HTTP JSON
// encodings of a batch, gzip, the Idempotency-Key, dead-letter lines, and URLs with their
// credentials removed. Formats: docs/sinks.md ("Wire formats"). Pure functions on their
// arguments, any thread; the exceptions are HostIdentity() and HostName(), which read the
// machine id and the host name (once, cached).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <rapidjson/document.h>

#include "daemon/redact/url_display.h"  // UrlForDisplay, shown beside the encoded endpoints

namespace ferry {

// One journal record on its way to a sink: the daemon-set fields and the envelope (already
// redacted when redaction applies). `envelope` and `payload_raw` point into memory the
// batch owns (daemon/sink/batch.h); a SinkEvent must not outlive its SinkBatch.
struct SinkEvent {
  uint64_t seq = 0;
  int64_t received_ns = 0;
  const rapidjson::Value* envelope = nullptr;  // a JSON object: id, ts, source, kind, ...
  size_t approx_bytes = 0;                     // journal body size, for batch limits
  // The payload's JSON exactly as the journal holds it (compacted), written by http-json in
  // place of envelope["payload"] so numbers keep every digit; empty when the envelope's
  // value must be written instead (no payload, or redaction changed it).
  std::string_view payload_raw;
};

struct BatchMeta {
  std::string host;     // host name (gethostname)
  std::string host_id;  // stable host identity (see HostIdentity())
  std::string sink;     // sink name
  std::string version;  // ferry version, e.g. "0.1.0"
};

// http-json: {"format":"ferry.batch.v1", "host", "host_id", "sink", "first_seq", "last_seq",
//             "count", "events":[{"seq","received", ...envelope keys...}]}
// `events` must be non-empty and in seq order. The envelope keys are copied as they are;
// "seq" and "received" (ns, integer) are added first.
std::string EncodeHttpJson(const BatchMeta& meta, std::span<const SinkEvent> events);

// otlp-http: an ExportLogsServiceRequest in the OTLP/JSON encoding (opentelemetry-proto
// logs/v1, JSON mapping: lowerCamelCase field names, 64-bit integers as decimal strings,
// bytes as base64, enums as integers). One resourceLogs with resource attributes
// service.name="ferry", service.version, host.name, host.id; one scopeLogs with scope
// {name:"ferry", version}; one logRecord per event:
//   timeUnixNano = envelope ts (string; falls back to received), observedTimeUnixNano =
//   received (string), severityNumber 9 (INFO) and severityText "INFO",
//   body = the payload as an AnyValue (objects -> kvlistValue, arrays -> arrayValue,
//   strings -> stringValue, integers -> intValue (string), other numbers -> doubleValue,
//   bools -> boolValue, null -> {} ), attributes: ferry.source, ferry.kind,
//   ferry.session, ferry.cwd, ferry.host, ferry.id (stringValue), ferry.seq, ferry.pid
//   (intValue as string), and ferry.truncated (boolValue) when the envelope has it.
//   Attributes whose envelope field is absent are left out.
std::string EncodeOtlpJson(const BatchMeta& meta, std::span<const SinkEvent> events);

// gzip (RFC 1952, zlib deflate with a gzip header), level 6 by default. Returns false only
// when zlib fails (out of memory).
bool Gzip(std::string_view in, std::string* out, int level = 6);
// The inverse, for tests. Returns false on a corrupt stream.
bool Gunzip(std::string_view in, std::string* out);

// "ferry-" + sink + "-" + host_id + "-" + first_seq + "-" + last_seq (+ "-" + suffix when
// non-empty). Identical for the same inputs: across retries, splits and restarts a batch of
// the same seqs gets the same key. Only [A-Za-z0-9._-] appear (other bytes become '_').
std::string IdempotencyKey(std::string_view sink, std::string_view host_id, uint64_t first_seq,
                           uint64_t last_seq, std::string_view suffix = {});

// One line of deadletter/<sink>.ndjson (docs/sinks.md "Dead letters"), '\n' included:
//   {"time","sink","seq","id","status","response",
//    "event":{"seq","received", ...every member of the journal body...}}
// `time` is preformatted (ISO 8601), `id` null when the envelope has none, `response` is made
// valid UTF-8 and cut to at most 1024 bytes. `body` is the journal record body (the
// envelope as the hook sent it, not the redacted copy: the file stays on this machine); when
// it is not a JSON object, "event" holds seq and received only. `received` is written exactly
// (all 19 digits): a replay sends it upstream again.
std::string DeadLetterLine(std::string_view time, std::string_view sink, uint64_t seq,
                           const std::string* id, int64_t received_ns, long status,
                           std::string_view response, std::string_view body);

// `ns` since the epoch as "YYYY-MM-DDTHH:MM:SS.mmmZ" (UTC), for dead letters and status.
std::string IsoTimeUtc(int64_t ns);

// Replaces every occurrence of `secret` in *text with "[REDACTED:token]", and an end of *text
// that is the first 4 or more bytes of `secret` (an excerpt cut in the middle of it) too.
// Returns how many it replaced; an empty `secret` changes nothing. For response bodies that
// echo the request's Authorization header before they reach status, flush output or logs.
size_t RedactLiteral(std::string* text, std::string_view secret);

// A stable, non-reversible host identity: sd_id128_get_machine_app_specific() with ferry's
// application id, as 32 hex digits; falls back to a hex FNV-1a hash of the host name when
// /etc/machine-id is missing.
std::string HostIdentity();
std::string HostName();

}  // namespace ferry
