#include "proto/transcript.h"

#include "proto/event.h"
#include "proto/messages.h"

namespace ferry::proto {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void Str(JsonWriter& w, const char* key, std::string_view v) {
  w.Key(key);
  w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
}

bool GetString(const rapidjson::Value& doc, const char* key, std::string* out) {
  auto it = doc.FindMember(key);
  if (it == doc.MemberEnd()) return true;
  if (!it->value.IsString()) return false;
  out->assign(it->value.GetString(), it->value.GetStringLength());
  return true;
}

}  // namespace

std::string Base64Encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                       (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) |
                       uint32_t{static_cast<uint8_t>(in[i + 2])};
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (i + 1 < in.size()) v |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < in.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  out->clear();
  if (in.size() % 4 != 0) return false;
  out->reserve(in.size() / 4 * 3);
  for (size_t i = 0; i < in.size(); i += 4) {
    int s[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = in[i + static_cast<size_t>(k)];
      if (c == '=' && i + 4 == in.size() && k >= 2) {
        s[k] = 0;
        ++pad;
        continue;
      }
      if (pad > 0 || (s[k] = Sextet(c)) < 0) return false;
    }
    const uint32_t v = (static_cast<uint32_t>(s[0]) << 18) | (static_cast<uint32_t>(s[1]) << 12) |
                       (static_cast<uint32_t>(s[2]) << 6) | static_cast<uint32_t>(s[3]);
    out->push_back(static_cast<char>(v >> 16));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

std::string MakeTranscriptRequestBody(const TranscriptRequest& r) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("v");
  w.Int(1);
  Str(w, "session", r.session);
  if (!r.source.empty()) Str(w, "source", r.source);
  if (r.gen != 0) {
    w.Key("gen");
    w.Uint(r.gen);
  }
  if (r.at != 0) {
    w.Key("at");
    w.Uint64(r.at);
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool ParseTranscriptRequestBody(std::string_view body, TranscriptRequest* r, Error* error) {
  rapidjson::Document doc;
  if (!ParseVersionedRequest(body, &doc, error)) return false;
  *r = TranscriptRequest{};
  if (!GetString(doc, "session", &r->session) || r->session.empty()) {
    *error = {Errc::kMissingField, "TRANSCRIPT_REQ needs \"session\": a non-empty string"};
    return false;
  }
  if (!GetString(doc, "source", &r->source)) {
    *error = {Errc::kWrongType, "TRANSCRIPT_REQ \"source\" must be a string"};
    return false;
  }
  auto gen = doc.FindMember("gen");
  if (gen != doc.MemberEnd()) {
    if (!gen->value.IsUint()) {
      *error = {Errc::kWrongType, "TRANSCRIPT_REQ \"gen\" must be an unsigned integer"};
      return false;
    }
    r->gen = gen->value.GetUint();
  }
  auto at = doc.FindMember("at");
  if (at != doc.MemberEnd()) {
    if (!at->value.IsUint64()) {
      *error = {Errc::kWrongType, "TRANSCRIPT_REQ \"at\" must be an unsigned integer"};
      return false;
    }
    r->at = at->value.GetUint64();
  }
  return true;
}

std::string MakeTranscriptResultBody(const TranscriptResult& r) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  Str(w, "status", r.status);
  if (r.status != "ok") {
    Str(w, "message", r.message);
    w.EndObject();
    return std::string(sb.GetString(), sb.GetSize());
  }
  Str(w, "source", r.source);
  Str(w, "session", r.session);
  Str(w, "data", Base64Encode(r.data));
  w.Key("gen");
  w.Uint(r.gen);
  w.Key("at");
  w.Uint64(r.at);
  w.Key("done");
  w.Bool(r.done);
  if (!r.damage.empty()) {
    w.Key("damage");
    w.StartArray();
    for (const std::string& d : r.damage) w.String(d.c_str());
    w.EndArray();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool ParseTranscriptResultBody(std::string_view body, TranscriptResult* r, Error* error) {
  rapidjson::Document doc;
  if (!ParseJson(body, &doc, error)) return false;
  *r = TranscriptResult{};
  std::string data;
  if (!doc.IsObject() || !GetString(doc, "status", &r->status) ||
      !GetString(doc, "message", &r->message) || !GetString(doc, "source", &r->source) ||
      !GetString(doc, "session", &r->session) || !GetString(doc, "data", &data) ||
      !Base64Decode(data, &r->data)) {
    *error = {Errc::kBadValue, "TRANSCRIPT_RESULT is not a transcript result"};
    return false;
  }
  auto gen = doc.FindMember("gen");
  if (gen != doc.MemberEnd() && gen->value.IsUint()) r->gen = gen->value.GetUint();
  auto at = doc.FindMember("at");
  if (at != doc.MemberEnd() && at->value.IsUint64()) r->at = at->value.GetUint64();
  auto done = doc.FindMember("done");
  r->done = done == doc.MemberEnd() || !done->value.IsBool() || done->value.GetBool();
  auto damage = doc.FindMember("damage");
  if (damage != doc.MemberEnd() && damage->value.IsArray()) {
    for (const auto& d : damage->value.GetArray()) {
      if (d.IsString()) r->damage.emplace_back(d.GetString(), d.GetStringLength());
    }
  }
  return true;
}

}  // namespace ferry::proto
