#include "daemon/sink/encode.h"

#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <climits>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <limits>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "proto/event.h"

namespace ferry {
namespace {

using proto::JsonWriter;

// Bytes written per event on top of its journal body: the keys, seq and received, and for
// OTLP the AnyValue wrappers. Only sizes the first reservation; the buffer grows as needed.
constexpr size_t kHttpJsonOverhead = 64;
constexpr size_t kOtlpOverhead = 640;

void Key(JsonWriter& w, std::string_view key) {
  w.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
}

void String(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void KeyString(JsonWriter& w, std::string_view key, std::string_view value) {
  Key(w, key);
  String(w, value);
}

// A decimal string of a 64-bit integer, as the proto3 JSON mapping writes int64/uint64.
void DecimalString(JsonWriter& w, uint64_t v) {
  char buf[24];
  char* end = buf + sizeof buf;
  char* p = end;
  do {
    *--p = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0);
  w.String(p, static_cast<rapidjson::SizeType>(end - p));
}

void DecimalString(JsonWriter& w, int64_t v) {
  if (v >= 0) return DecimalString(w, static_cast<uint64_t>(v));
  char buf[24];
  char* end = buf + sizeof buf;
  char* p = end;
  // Negate in unsigned arithmetic: -INT64_MIN does not fit an int64_t.
  uint64_t u = 0 - static_cast<uint64_t>(v);
  do {
    *--p = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  *--p = '-';
  w.String(p, static_cast<rapidjson::SizeType>(end - p));
}

std::string TakeString(const rapidjson::StringBuffer& sb) {
  return std::string(sb.GetString(), sb.GetSize());
}

size_t ReserveFor(std::span<const SinkEvent> events, size_t per_event) {
  size_t total = 512;
  for (const SinkEvent& e : events) total += e.approx_bytes + per_event;
  return total;
}

// An OTLP AnyValue (opentelemetry-proto common/v1) in the JSON mapping.
//
// Integers that fit an int64 become {"intValue":"<decimal>"}. A uint64 above INT64_MAX does
// not fit AnyValue.int_value (an int64); it becomes {"stringValue":"<decimal>"} so that its
// exact digits survive, rather than a doubleValue that would round it.
//
// Journal payloads went through proto::ParseJson, which refuses nesting deeper than
// kMaxJsonDepth, so the recursion is bounded. Anything deeper (which no journal record holds)
// is written as an empty AnyValue rather than recursing further.
void WriteAnyValue(JsonWriter& w, const rapidjson::Value& v, int depth = 0) {
  w.StartObject();
  if (depth > proto::kMaxJsonDepth) {
    w.EndObject();
    return;
  }
  switch (v.GetType()) {
    case rapidjson::kNullType:
      break;  // null: an AnyValue with no value set
    case rapidjson::kFalseType:
    case rapidjson::kTrueType:
      Key(w, "boolValue");
      w.Bool(v.GetBool());
      break;
    case rapidjson::kStringType:
      Key(w, "stringValue");
      w.String(v.GetString(), v.GetStringLength());
      break;
    case rapidjson::kNumberType:
      if (v.IsInt64()) {
        Key(w, "intValue");
        DecimalString(w, v.GetInt64());
      } else if (v.IsUint64()) {
        Key(w, "stringValue");
        DecimalString(w, v.GetUint64());
      } else {
        Key(w, "doubleValue");
        w.Double(v.GetDouble());
      }
      break;
    case rapidjson::kObjectType:
      Key(w, "kvlistValue");
      w.StartObject();
      Key(w, "values");
      w.StartArray();
      for (auto it = v.MemberBegin(); it != v.MemberEnd(); ++it) {
        w.StartObject();
        Key(w, "key");
        w.String(it->name.GetString(), it->name.GetStringLength());
        Key(w, "value");
        WriteAnyValue(w, it->value, depth + 1);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
      break;
    case rapidjson::kArrayType:
      Key(w, "arrayValue");
      w.StartObject();
      Key(w, "values");
      w.StartArray();
      for (const auto& item : v.GetArray()) WriteAnyValue(w, item, depth + 1);
      w.EndArray();
      w.EndObject();
      break;
  }
  w.EndObject();
}

// {"key": key, "value": {"stringValue": value}}
void StringAttribute(JsonWriter& w, std::string_view key, std::string_view value) {
  w.StartObject();
  KeyString(w, "key", key);
  Key(w, "value");
  w.StartObject();
  KeyString(w, "stringValue", value);
  w.EndObject();
  w.EndObject();
}

// The envelope member named `name`, or null when the envelope lacks it.
const rapidjson::Value* Member(const rapidjson::Value* envelope, std::string_view name) {
  if (envelope == nullptr || !envelope->IsObject()) return nullptr;
  auto it = envelope->FindMember(
      rapidjson::StringRef(name.data(), static_cast<rapidjson::SizeType>(name.size())));
  return it == envelope->MemberEnd() ? nullptr : &it->value;
}

// Envelope fields that become logRecord attributes, in the order they are written.
struct AttributeField {
  std::string_view field;
  std::string_view attribute;
};
constexpr std::array<AttributeField, 5> kLeadingAttributes = {{
    {"source", "ferry.source"},
    {"kind", "ferry.kind"},
    {"session", "ferry.session"},
    {"cwd", "ferry.cwd"},
    {"host", "ferry.host"},
}};

void EnvelopeAttribute(JsonWriter& w, const rapidjson::Value* envelope, std::string_view field,
                       std::string_view attribute) {
  const rapidjson::Value* v = Member(envelope, field);
  if (v == nullptr) return;
  w.StartObject();
  KeyString(w, "key", attribute);
  Key(w, "value");
  // A validated envelope has strings, a non-negative integer pid and a bool truncated, which
  // come out as stringValue, intValue and boolValue.
  WriteAnyValue(w, *v);
  w.EndObject();
}

void WriteLogRecord(JsonWriter& w, const SinkEvent& e) {
  const rapidjson::Value* envelope = e.envelope;
  w.StartObject();
  // ts is an integer >= 0 in a valid envelope; anything else falls back to received.
  const rapidjson::Value* ts = Member(envelope, "ts");
  Key(w, "timeUnixNano");
  if (ts != nullptr && ts->IsUint64()) {
    DecimalString(w, ts->GetUint64());
  } else {
    DecimalString(w, std::max<int64_t>(e.received_ns, 0));
  }
  Key(w, "observedTimeUnixNano");
  DecimalString(w, std::max<int64_t>(e.received_ns, 0));
  Key(w, "severityNumber");
  w.Int(9);  // SEVERITY_NUMBER_INFO
  KeyString(w, "severityText", "INFO");
  // No payload, no body (an unset field), rather than an empty AnyValue.
  if (const rapidjson::Value* payload = Member(envelope, "payload")) {
    Key(w, "body");
    WriteAnyValue(w, *payload);
  }
  Key(w, "attributes");
  w.StartArray();
  for (const AttributeField& a : kLeadingAttributes) {
    EnvelopeAttribute(w, envelope, a.field, a.attribute);
  }
  EnvelopeAttribute(w, envelope, "id", "ferry.id");
  w.StartObject();
  KeyString(w, "key", "ferry.seq");
  Key(w, "value");
  w.StartObject();
  Key(w, "intValue");
  DecimalString(w, e.seq);
  w.EndObject();
  w.EndObject();
  EnvelopeAttribute(w, envelope, "pid", "ferry.pid");
  EnvelopeAttribute(w, envelope, "truncated", "ferry.truncated");
  w.EndArray();
  w.EndObject();
}

// zlib counts in uInt (32 bits); feed it at most this much at a time.
constexpr size_t kZlibChunk = std::numeric_limits<uInt>::max();

Bytef* ZIn(std::string_view s, size_t pos) {
  return reinterpret_cast<Bytef*>(const_cast<char*>(s.data() + pos));
}

Bytef* ZOut(std::string* s, size_t pos) { return reinterpret_cast<Bytef*>(s->data() + pos); }

}  // namespace

std::string EncodeHttpJson(const BatchMeta& meta, std::span<const SinkEvent> events) {
  rapidjson::StringBuffer sb;
  sb.Reserve(ReserveFor(events, kHttpJsonOverhead));
  JsonWriter w(sb);
  w.StartObject();
  KeyString(w, "format", "ferry.batch.v1");
  KeyString(w, "host", meta.host);
  KeyString(w, "host_id", meta.host_id);
  KeyString(w, "sink", meta.sink);
  Key(w, "first_seq");
  w.Uint64(events.empty() ? 0 : events.front().seq);
  Key(w, "last_seq");
  w.Uint64(events.empty() ? 0 : events.back().seq);
  Key(w, "count");
  w.Uint64(events.size());
  Key(w, "events");
  w.StartArray();
  for (const SinkEvent& e : events) {
    w.StartObject();
    Key(w, "seq");
    w.Uint64(e.seq);
    Key(w, "received");
    w.Int64(e.received_ns);
    if (e.envelope != nullptr && e.envelope->IsObject()) {
      for (auto it = e.envelope->MemberBegin(); it != e.envelope->MemberEnd(); ++it) {
        const std::string_view name(it->name.GetString(), it->name.GetStringLength());
        // The daemon's fields win; a valid envelope never has them anyway.
        if (name == "seq" || name == "received") continue;
        w.Key(it->name.GetString(), it->name.GetStringLength());
        if (name == "payload" && !e.payload_raw.empty()) {
          w.RawValue(e.payload_raw.data(), e.payload_raw.size(), it->value.GetType());
        } else {
          it->value.Accept(w);
        }
      }
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return TakeString(sb);
}

std::string EncodeOtlpJson(const BatchMeta& meta, std::span<const SinkEvent> events) {
  rapidjson::StringBuffer sb;
  sb.Reserve(ReserveFor(events, kOtlpOverhead));
  JsonWriter w(sb);
  w.StartObject();
  Key(w, "resourceLogs");
  w.StartArray();
  w.StartObject();
  Key(w, "resource");
  w.StartObject();
  Key(w, "attributes");
  w.StartArray();
  StringAttribute(w, "service.name", "ferry");
  StringAttribute(w, "service.version", meta.version);
  StringAttribute(w, "host.name", meta.host);
  StringAttribute(w, "host.id", meta.host_id);
  w.EndArray();
  w.EndObject();  // resource
  Key(w, "scopeLogs");
  w.StartArray();
  w.StartObject();
  Key(w, "scope");
  w.StartObject();
  KeyString(w, "name", "ferry");
  KeyString(w, "version", meta.version);
  w.EndObject();
  Key(w, "logRecords");
  w.StartArray();
  for (const SinkEvent& e : events) WriteLogRecord(w, e);
  w.EndArray();
  w.EndObject();  // scopeLogs[0]
  w.EndArray();
  w.EndObject();  // resourceLogs[0]
  w.EndArray();
  w.EndObject();
  return TakeString(sb);
}

bool Gzip(std::string_view in, std::string* out, int level) {
  z_stream zs{};
  // 15 + 16: a 32 KiB window with a gzip header and trailer instead of zlib's.
  if (deflateInit2(&zs, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return false;
  out->clear();
  out->resize(deflateBound(&zs, static_cast<uLong>(in.size())));
  size_t in_pos = 0;
  size_t out_pos = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (out_pos == out->size()) out->resize(out->size() * 2 + 64);  // past deflateBound
    const size_t in_len = std::min(in.size() - in_pos, kZlibChunk);
    const size_t out_len = std::min(out->size() - out_pos, kZlibChunk);
    zs.next_in = ZIn(in, in_pos);
    zs.avail_in = static_cast<uInt>(in_len);
    zs.next_out = ZOut(out, out_pos);
    zs.avail_out = static_cast<uInt>(out_len);
    const bool last = in_pos + in_len == in.size();
    rc = deflate(&zs, last ? Z_FINISH : Z_NO_FLUSH);
    if (rc == Z_STREAM_ERROR) {
      deflateEnd(&zs);
      out->clear();
      return false;
    }
    in_pos += in_len - zs.avail_in;
    out_pos += out_len - zs.avail_out;
  }
  deflateEnd(&zs);
  out->resize(out_pos);
  return true;
}

bool Gunzip(std::string_view in, std::string* out) {
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 16) != Z_OK) return false;
  out->clear();
  out->resize(std::max<size_t>(in.size() * 4, 4096));
  size_t in_pos = 0;
  size_t out_pos = 0;
  int rc = Z_OK;
  while (rc != Z_STREAM_END) {
    if (out_pos == out->size()) out->resize(out->size() * 2);
    const size_t in_len = std::min(in.size() - in_pos, kZlibChunk);
    const size_t out_len = std::min(out->size() - out_pos, kZlibChunk);
    zs.next_in = ZIn(in, in_pos);
    zs.avail_in = static_cast<uInt>(in_len);
    zs.next_out = ZOut(out, out_pos);
    zs.avail_out = static_cast<uInt>(out_len);
    rc = inflate(&zs, Z_NO_FLUSH);
    in_pos += in_len - zs.avail_in;
    out_pos += out_len - zs.avail_out;
    const bool no_progress = in_len == zs.avail_in && out_len == zs.avail_out;
    // Z_BUF_ERROR with input left means the output was full (grown above); with none left,
    // the stream is cut short.
    if (rc == Z_NEED_DICT || rc == Z_DATA_ERROR || rc == Z_MEM_ERROR || rc == Z_STREAM_ERROR ||
        (rc != Z_STREAM_END && in_pos == in.size() && no_progress)) {
      inflateEnd(&zs);
      out->clear();
      return false;
    }
  }
  inflateEnd(&zs);
  out->resize(out_pos);
  // One gzip member and nothing after it.
  return in_pos == in.size();
}

std::string IdempotencyKey(std::string_view sink, std::string_view host_id, uint64_t first_seq,
                           uint64_t last_seq, std::string_view suffix) {
  std::string key;
  key.reserve(6 + sink.size() + host_id.size() + 44 + suffix.size());
  key.append("ferry-");
  key.append(sink);
  key.push_back('-');
  key.append(host_id);
  key.push_back('-');
  key.append(std::to_string(first_seq));
  key.push_back('-');
  key.append(std::to_string(last_seq));
  if (!suffix.empty()) {
    key.push_back('-');
    key.append(suffix);
  }
  for (char& c : key) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == '-';
    if (!ok) c = '_';
  }
  return key;
}

std::string DeadLetterLine(std::string_view time, std::string_view sink, uint64_t seq,
                           const std::string* id, int64_t received_ns, long status,
                           std::string_view response, std::string_view body) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  auto str = [&w](std::string_view s) {
    w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
  };
  w.StartObject();
  w.Key("time");
  str(time);
  w.Key("sink");
  str(sink);
  w.Key("seq");
  w.Uint64(seq);
  w.Key("id");
  if (id) {
    str(*id);
  } else {
    w.Null();
  }
  w.Key("status");
  w.Int64(status);
  w.Key("response");
  str(proto::SanitizeUtf8(response, 1024));
  w.Key("event");
  w.StartObject();
  w.Key("seq");
  w.Uint64(seq);
  w.Key("received");
  w.Int64(received_ns);
  w.EndObject();
  w.EndObject();
  std::string line(sb.GetString(), sb.GetSize());
  // Now `...,"received":R}}`: splice the journal body's members into "event" in place of its
  // closing brace (the body's own closing brace ends it).
  line.resize(line.size() - 2);
  if (body.size() > 2 && body.front() == '{') {
    line += ',';
    line.append(body.substr(1));
  } else {
    line += '}';
  }
  line += "}\n";
  return line;
}

}  // namespace ferry
