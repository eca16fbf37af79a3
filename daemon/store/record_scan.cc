#include "daemon/store/record_scan.h"

#include <cctype>
#include <charconv>
#include <system_error>

#include "daemon/store/session_rollup.h"
#include "proto/event.h"

namespace ferry::store {
namespace {

bool IsWs(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void SkipWs(const char*& p, const char* end) {
  while (p < end && IsWs(*p)) ++p;
}

// At '"': moves past the closing quote. false: unterminated, or a control byte inside.
bool ScanString(const char*& p, const char* end, bool* escaped) {
  for (++p; p < end; ++p) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') {
      ++p;
      return true;
    }
    if (c == '\\') {
      *escaped = true;
      if (++p == end) return false;
    } else if (c < 0x20) {
      return false;
    }
  }
  return false;
}

// A number or literal token starting at p (not a string or container).
std::string_view Token(const char*& p, const char* end) {
  const char* s = p;
  while (p < end &&
         (std::isalnum(static_cast<unsigned char>(*p)) || *p == '-' || *p == '+' || *p == '.'))
    ++p;
  return {s, static_cast<size_t>(p - s)};
}

bool ParseDouble(std::string_view t, double* v) {
  const auto r = std::from_chars(t.data(), t.data() + t.size(), *v);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

bool IsScalar(std::string_view t) {
  double ignored = 0;
  return t == "true" || t == "false" || t == "null" || (!t.empty() && ParseDouble(t, &ignored));
}

// A JSON integer that fits int64 (what rapidjson's IsInt64 accepts); false for anything else.
bool ParseInt64(std::string_view t, int64_t* v) {
  const size_t digits = !t.empty() && t[0] == '-' ? 1 : 0;
  if (t.size() <= digits || t[digits] < '0' || t[digits] > '9') return false;
  if (t[digits] == '0' && t.size() > digits + 1) return false;  // leading zero: not JSON
  const auto r = std::from_chars(t.data(), t.data() + t.size(), *v);
  return r.ec == std::errc() && r.ptr == t.data() + t.size();
}

// The payload object's first exit_status / exit_code / exitCode.
struct FailureScan {
  unsigned seen = 0;
  bool failure = false;
  // Called with a key at the payload's top level and the bytes after it. false: fall back.
  bool Key(std::string_view key, const char* q, const char* end) {
    static constexpr std::string_view kKeys[] = {"exit_status", "exit_code", "exitCode"};
    for (unsigned i = 0; i < 3; ++i) {
      if (key != kKeys[i] || (seen & (1u << i))) continue;
      seen |= 1u << i;
      SkipWs(q, end);
      if (q == end || *q != ':') return false;
      ++q;
      SkipWs(q, end);
      if (q < end && (*q == '-' || (*q >= '0' && *q <= '9'))) {
        double v = 0;
        if (!ParseDouble(Token(q, end), &v)) return false;
        if (v != 0) failure = true;
      }
    }
    return true;
  }
};

// At the first byte of a value: moves past it. *compact becomes false if whitespace sits
// between its tokens; `fs`, when set, looks at the keys of an object's top level.
bool SkipValue(const char*& p, const char* end, bool* compact, FailureScan* fs) {
  if (p == end) return false;
  if (*p == '"') {
    bool escaped = false;
    return ScanString(p, end, &escaped);
  }
  if (*p != '{' && *p != '[') return IsScalar(Token(p, end));
  const bool object = *p == '{';
  int depth = 0;
  char prev = 0;  // the last significant byte at depth 1
  while (p < end) {
    const char c = *p;
    if (c == '"') {
      const char* s = p;
      bool escaped = false;
      if (!ScanString(p, end, &escaped)) return false;
      if (fs && object && depth == 1 && (prev == '{' || prev == ',')) {
        if (escaped) return false;  // a key spelt with escapes: the full parser decides
        if (!fs->Key({s + 1, static_cast<size_t>(p - s - 2)}, p, end)) return false;
      }
      if (depth == 1) prev = '"';
      continue;
    }
    if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) {
        ++p;
        return true;
      }
    } else if (IsWs(c)) {
      *compact = false;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      return false;
    }
    if (depth == 1 && !IsWs(c)) prev = c;
    ++p;
  }
  return false;
}

enum Field : unsigned { kId, kSource, kKind, kSession, kCwd, kHost, kTs, kPid, kPayload, kOther };

Field FieldOf(std::string_view key) {
  static constexpr std::string_view kNames[] = {"id",   "source", "kind", "session", "cwd",
                                                "host", "ts",     "pid",  "payload"};
  for (unsigned i = 0; i < kOther; ++i)
    if (key == kNames[i]) return static_cast<Field>(i);
  return kOther;
}

// One member's value at p; false: fall back to the full parser.
bool ScanMember(Field f, const char*& p, const char* end, ScannedEnvelope* out) {
  std::string_view* strings[] = {&out->id,      &out->source, &out->kind,
                                 &out->session, &out->cwd,    &out->host};
  if (f <= kHost) {
    if (p == end || *p != '"') return false;
    const char* s = p;
    bool escaped = false;
    if (!ScanString(p, end, &escaped) || escaped) return false;
    *strings[f] = {s + 1, static_cast<size_t>(p - s - 2)};
    return true;
  }
  if (f == kTs || f == kPid) {
    if (!ParseInt64(Token(p, end), f == kTs ? &out->ts : &out->pid)) return false;
    (f == kTs ? out->has_ts : out->has_pid) = true;
    return true;
  }
  const char* s = p;
  bool compact = true;
  FailureScan fs;
  if (!SkipValue(p, end, &compact, f == kPayload ? &fs : nullptr)) return false;
  if (f == kPayload) {
    out->has_payload = true;
    out->payload = {s, static_cast<size_t>(p - s)};
    out->payload_compact = compact;
    out->payload_failure = fs.failure;
  }
  return true;
}

}  // namespace

bool ScanRecord(std::string_view body, ScannedEnvelope* out) {
  *out = ScannedEnvelope{};
  const char* p = body.data();
  const char* const end = p + body.size();
  SkipWs(p, end);
  if (p == end || *p != '{') return false;
  ++p;
  SkipWs(p, end);
  unsigned seen = 0;
  if (p < end && *p == '}') {
    ++p;
  } else {
    for (;;) {
      if (p == end || *p != '"') return false;
      const char* k = p;
      bool escaped = false;
      if (!ScanString(p, end, &escaped) || escaped) return false;
      const Field f = FieldOf({k + 1, static_cast<size_t>(p - k - 2)});
      SkipWs(p, end);
      if (p == end || *p != ':') return false;
      ++p;
      SkipWs(p, end);
      if (f != kOther) {
        if (seen & (1u << f)) return false;  // a repeated field: the full parser decides
        seen |= 1u << f;
      }
      if (!ScanMember(f, p, end, out)) return false;
      SkipWs(p, end);
      if (p < end && *p == ',') {
        ++p;
        SkipWs(p, end);
        continue;
      }
      if (p < end && *p == '}') {
        ++p;
        break;
      }
      return false;
    }
  }
  SkipWs(p, end);
  return p == end && !out->id.empty();
}

namespace {

std::string_view StrAt(const rapidjson::Value& obj, const char* key) {
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

}  // namespace

bool ParseRecordSlow(std::string_view body, rapidjson::Document* doc,
                     std::vector<proto::PayloadSpan>* spans, ScannedEnvelope* out) {
  *out = ScannedEnvelope{};
  proto::Error perr;
  // *doc is reused record after record: its pool is cleared once it holds over kKeepParsePool.
  proto::RecycleDocument(doc, kKeepParsePool);
  // The payload column gets the payload's bytes from the record, not a re-serialised
  // document: numbers keep every digit (docs/protocol.md "Event envelope").
  if (!proto::ParseEnvelopes(body, 1, doc, spans, &perr) || !doc->IsObject() ||
      spans->size() != 1 || StrAt(*doc, "id").empty()) {
    return false;
  }
  out->id = StrAt(*doc, "id");
  out->source = StrAt(*doc, "source");
  out->kind = StrAt(*doc, "kind");
  out->session = StrAt(*doc, "session");
  out->cwd = StrAt(*doc, "cwd");
  out->host = StrAt(*doc, "host");
  auto ts_it = doc->FindMember("ts");
  out->has_ts = ts_it != doc->MemberEnd() && ts_it->value.IsInt64();
  out->ts = out->has_ts ? ts_it->value.GetInt64() : 0;
  auto pid_it = doc->FindMember("pid");
  out->has_pid = pid_it != doc->MemberEnd() && pid_it->value.IsInt64();
  out->pid = out->has_pid ? pid_it->value.GetInt64() : 0;
  auto payload_it = doc->FindMember("payload");
  const rapidjson::Value* payload = payload_it != doc->MemberEnd() ? &payload_it->value : nullptr;
  out->has_payload = payload && (*spans)[0].present();
  if (out->has_payload) {
    out->payload = body.substr((*spans)[0].begin, (*spans)[0].end - (*spans)[0].begin);
    out->payload_compact = false;
  }
  out->payload_failure = IsFailurePayload(payload);
  return true;
}

}  // namespace ferry::store
