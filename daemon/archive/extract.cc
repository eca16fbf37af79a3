#include "daemon/archive/extract.h"

#include <time.h>

#include <cstdio>

#include "proto/event.h"

namespace ferry::archive {
namespace {

std::string_view StrOf(const rapidjson::Value& obj, const char* key) {
  if (!obj.IsObject()) return {};
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return {};
  return {it->value.GetString(), it->value.GetStringLength()};
}

// A Claude message's content: the string, or its text blocks joined by newlines.
std::string ContentText(const rapidjson::Value& content) {
  if (content.IsString()) return {content.GetString(), content.GetStringLength()};
  std::string text;
  if (!content.IsArray()) return text;
  for (const auto& block : content.GetArray()) {
    if (StrOf(block, "type") != "text") continue;
    const std::string_view t = StrOf(block, "text");
    if (t.empty()) continue;
    if (!text.empty()) text += "\n";
    text.append(t);
  }
  return text;
}

void OneLine(std::string_view source, std::string_view session, std::string_view line,
             std::vector<TranscriptMessage>* out) {
  rapidjson::Document doc;
  proto::Error error;
  if (line.empty() || line[0] != '{' || !proto::ParseJson(line, &doc, &error) || !doc.IsObject())
    return;
  TranscriptMessage m;
  const std::string_view type = StrOf(doc, "type");
  if (type == "user" || type == "assistant") {
    auto meta = doc.FindMember("isMeta");
    if (meta != doc.MemberEnd() && meta->value.IsBool() && meta->value.GetBool()) return;
    auto msg = doc.FindMember("message");
    if (msg == doc.MemberEnd() || !msg->value.IsObject()) return;
    auto content = msg->value.FindMember("content");
    if (content == msg->value.MemberEnd()) return;
    m.text = ContentText(content->value);
    m.role = std::string(type);
  } else if (type == "event_msg") {
    auto payload = doc.FindMember("payload");
    if (payload == doc.MemberEnd()) return;
    const std::string_view ptype = StrOf(payload->value, "type");
    if (ptype != "user_message" && ptype != "agent_message") return;
    m.text = std::string(StrOf(payload->value, "message"));
    m.role = ptype == "user_message" ? "user" : "assistant";
  } else {
    return;
  }
  if (m.text.empty()) return;
  m.source.assign(source);
  m.session.assign(session);
  m.ts = ParseIsoTimestamp(StrOf(doc, "timestamp"));
  out->push_back(std::move(m));
}

}  // namespace

int64_t ParseIsoTimestamp(std::string_view text) {
  if (text.size() < 20 || text.size() > 40 || text.back() != 'Z') return 0;
  const std::string s(text);
  struct tm tm {};
  int consumed = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6 ||
      consumed != 19) {
    return 0;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  const time_t secs = ::timegm(&tm);
  if (secs < 0) return 0;
  int64_t frac_ns = 0;
  size_t i = 19;
  if (s[i] == '.') {
    int64_t scale = 100000000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      frac_ns += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i != s.size() - 1) return 0;
  return static_cast<int64_t>(secs) * 1000000000 + frac_ns;
}

void ExtractMessages(std::string_view source, std::string_view session, std::string_view lines,
                     std::vector<TranscriptMessage>* out) {
  size_t start = 0;
  for (size_t nl = lines.find('\n'); nl != std::string_view::npos; nl = lines.find('\n', start)) {
    std::string_view line = lines.substr(start, nl - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    OneLine(source, session, line, out);
    start = nl + 1;
  }
}

}  // namespace ferry::archive
