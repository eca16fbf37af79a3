// EncodeOtlpTraces (spans.h): tool spans as an OTLP/JSON ExportTraceServiceRequest.
#include <string_view>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "daemon/sink/spans.h"
#include "proto/event.h"

namespace ferry {
namespace {

using proto::JsonWriter;

void Str(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void KeyStr(JsonWriter& w, const char* key, std::string_view value) {
  w.Key(key);
  Str(w, value);
}

// {"key": key, "value": {"stringValue": value}}; nothing when value is empty.
void StringAttr(JsonWriter& w, const char* key, std::string_view value) {
  if (value.empty()) return;
  w.StartObject();
  KeyStr(w, "key", key);
  w.Key("value");
  w.StartObject();
  KeyStr(w, "stringValue", value);
  w.EndObject();
  w.EndObject();
}

// {"key": key, "value": {"intValue": "<decimal>"}}
void IntAttr(JsonWriter& w, const char* key, int64_t value) {
  w.StartObject();
  KeyStr(w, "key", key);
  w.Key("value");
  w.StartObject();
  KeyStr(w, "intValue", std::to_string(value));
  w.EndObject();
  w.EndObject();
}

void WriteSpan(JsonWriter& w, const ToolSpan& s) {
  w.StartObject();
  KeyStr(w, "traceId", s.trace_id);
  KeyStr(w, "spanId", s.span_id);
  if (!s.parent_span_id.empty()) KeyStr(w, "parentSpanId", s.parent_span_id);
  KeyStr(w, "name", s.name);
  w.Key("kind");
  w.Int(1);  // SPAN_KIND_INTERNAL
  KeyStr(w, "startTimeUnixNano", std::to_string(s.start_ns < 0 ? 0 : s.start_ns));
  KeyStr(w, "endTimeUnixNano", std::to_string(s.end_ns < 0 ? 0 : s.end_ns));
  w.Key("attributes");
  w.StartArray();
  StringAttr(w, "ferry.source", s.source);
  StringAttr(w, "session.id", s.session);
  StringAttr(w, "ferry.cwd", s.cwd);
  if (!s.shell) {
    StringAttr(w, "gen_ai.operation.name", "execute_tool");
    StringAttr(w, "gen_ai.tool.name", s.name);
    StringAttr(w, "gen_ai.tool.call.id", s.tool_use_id);
  }
  StringAttr(w, "ferry.input", s.input);
  StringAttr(w, "ferry.outcome", s.outcome);
  if (s.output_bytes >= 0) IntAttr(w, "ferry.output_bytes", s.output_bytes);
  if (s.has_exit_status) IntAttr(w, "process.exit.code", s.exit_status);
  StringAttr(w, "ferry.agent_id", s.agent_id);
  StringAttr(w, "ferry.agent_type", s.agent_type);
  if (s.start_seq != 0) IntAttr(w, "ferry.start_seq", static_cast<int64_t>(s.start_seq));
  if (s.end_seq != 0) IntAttr(w, "ferry.end_seq", static_cast<int64_t>(s.end_seq));
  if (s.outcome == "unfinished") {
    w.StartObject();
    KeyStr(w, "key", "ferry.unfinished");
    w.Key("value");
    w.StartObject();
    w.Key("boolValue");
    w.Bool(true);
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("status");
  w.StartObject();
  w.Key("code");
  // STATUS_CODE_OK, STATUS_CODE_ERROR, or UNSET for unfinished and unknown.
  const bool error = s.outcome == "failed" || s.outcome == "interrupted";
  w.Int(s.outcome == "ok" ? 1 : error ? 2 : 0);
  if (error) KeyStr(w, "message", s.status_message);
  w.EndObject();
  w.EndObject();
}

}  // namespace

std::string EncodeOtlpTraces(const BatchMeta& meta, std::span<const ToolSpan> spans) {
  rapidjson::StringBuffer sb;
  sb.Reserve(512 + spans.size() * 900);
  JsonWriter w(sb);
  w.StartObject();
  w.Key("resourceSpans");
  w.StartArray();
  w.StartObject();
  w.Key("resource");
  w.StartObject();
  w.Key("attributes");
  w.StartArray();
  StringAttr(w, "service.name", "ferry");
  StringAttr(w, "service.version", meta.version);
  StringAttr(w, "host.name", meta.host);
  StringAttr(w, "host.id", meta.host_id);
  w.EndArray();
  w.EndObject();  // resource
  w.Key("scopeSpans");
  w.StartArray();
  w.StartObject();
  w.Key("scope");
  w.StartObject();
  KeyStr(w, "name", "ferry");
  KeyStr(w, "version", meta.version);
  w.EndObject();
  w.Key("spans");
  w.StartArray();
  for (const ToolSpan& s : spans) WriteSpan(w, s);
  w.EndArray();
  w.EndObject();  // scopeSpans[0]
  w.EndArray();
  w.EndObject();  // resourceSpans[0]
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace ferry
