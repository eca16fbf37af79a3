#include "proto/event.h"

#include <sys/random.h>

#include <cstring>

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

namespace ferry::proto {
namespace {

// Forwards SAX events to a Document while counting depth, so the iterative reader can
// refuse a document nested deeper than kMaxJsonDepth before anything recursive sees it.
class DepthLimitedHandler {
 public:
  explicit DepthLimitedHandler(rapidjson::Document& doc) : doc_(doc) {}

  bool Null() { return doc_.Null(); }
  bool Bool(bool b) { return doc_.Bool(b); }
  bool Int(int i) { return doc_.Int(i); }
  bool Uint(unsigned u) { return doc_.Uint(u); }
  bool Int64(int64_t i) { return doc_.Int64(i); }
  bool Uint64(uint64_t u) { return doc_.Uint64(u); }
  bool Double(double d) { return doc_.Double(d); }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool copy) {
    return doc_.RawNumber(s, n, copy);
  }
  bool String(const char* s, rapidjson::SizeType n, bool copy) { return doc_.String(s, n, copy); }
  bool Key(const char* s, rapidjson::SizeType n, bool copy) { return doc_.Key(s, n, copy); }
  bool StartObject() { return ++depth_ <= kMaxJsonDepth && doc_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndObject(n);
  }
  bool StartArray() { return ++depth_ <= kMaxJsonDepth && doc_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) {
    --depth_;
    return doc_.EndArray(n);
  }
  bool too_deep() const { return depth_ > kMaxJsonDepth; }

 private:
  rapidjson::Document& doc_;
  int depth_ = 0;
};

bool Fail(Error* error, Errc code, std::string message) {
  error->code = code;
  error->message = std::move(message);
  return false;
}

std::string Field(std::string_view where, std::string_view name) {
  std::string s(where);
  s += '.';
  s += name;
  return s;
}

bool CheckString(const rapidjson::Value& v, std::string_view where, std::string_view name,
                 size_t max_len, bool non_empty, Error* error) {
  if (!v.IsString()) return Fail(error, Errc::kWrongType, Field(where, name) + " must be a string");
  const size_t len = v.GetStringLength();
  if (non_empty && len == 0) return Fail(error, Errc::kBadValue, Field(where, name) + " is empty");
  if (len > max_len) {
    return Fail(error, Errc::kBadValue,
                Field(where, name) + " is " + std::to_string(len) + " bytes; the limit is " +
                    std::to_string(max_len));
  }
  return true;
}

bool IsIdChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == '-';
}

}  // namespace

bool ParseJson(std::string_view text, rapidjson::Document* doc, Error* error) {
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(text.data(), text.size());
  rapidjson::EncodedInputStream<rapidjson::UTF8<>, rapidjson::MemoryStream> stream(ms);
  rapidjson::ParseResult result;
  bool too_deep = false;
  auto generator = [&](rapidjson::Document& d) {
    DepthLimitedHandler handler(d);
    result = reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseValidateEncodingFlag>(
        stream, handler);
    too_deep = handler.too_deep();
    return !result.IsError();
  };
  doc->Populate(generator);
  if (!result.IsError()) return true;
  if (too_deep) {
    return Fail(error, Errc::kBadJson,
                "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels at byte " +
                    std::to_string(result.Offset()));
  }
  return Fail(error, Errc::kBadJson,
              std::string("invalid JSON at byte ") + std::to_string(result.Offset()) + ": " +
                  rapidjson::GetParseError_En(result.Code()));
}

bool ValidateEnvelope(const rapidjson::Value& event, std::string_view where, Error* error) {
  if (!event.IsObject())
    return Fail(error, Errc::kNotObject, std::string(where) + " must be an object");
  bool has_id = false, has_ts = false, has_source = false, has_kind = false;
  for (auto it = event.MemberBegin(); it != event.MemberEnd(); ++it) {
    const std::string_view name(it->name.GetString(), it->name.GetStringLength());
    const rapidjson::Value& v = it->value;
    if (name == "id") {
      if (!CheckString(v, where, name, kMaxIdLength, true, error)) return false;
      for (size_t i = 0; i < v.GetStringLength(); ++i) {
        if (!IsIdChar(v.GetString()[i])) {
          return Fail(error, Errc::kBadValue,
                      Field(where, name) + " must be hex (128-bit random or UUID)");
        }
      }
      has_id = true;
    } else if (name == "ts") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer (ns since the epoch)");
      }
      has_ts = true;
    } else if (name == "source" || name == "kind") {
      if (!CheckString(v, where, name, kMaxNameLength, true, error)) return false;
      (name == "source" ? has_source : has_kind) = true;
    } else if (name == "session" || name == "cwd" || name == "host") {
      if (!CheckString(v, where, name, kMaxStringLength, false, error)) return false;
    } else if (name == "pid") {
      if (!v.IsInt64() || v.GetInt64() < 0) {
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer");
      }
    } else if (name == "truncated") {
      if (!v.IsBool())
        return Fail(error, Errc::kWrongType, Field(where, name) + " must be a boolean");
    } else if (name == "orig_size") {
      if (!v.IsUint64())
        return Fail(error, Errc::kWrongType,
                    Field(where, name) + " must be a non-negative integer");
    } else if (name == "payload") {
      // Any JSON value.
    } else {
      return Fail(error, Errc::kUnknownField, Field(where, name) + " is not an envelope field");
    }
  }
  if (!has_id) return Fail(error, Errc::kMissingField, Field(where, "id") + " is required");
  if (!has_ts) return Fail(error, Errc::kMissingField, Field(where, "ts") + " is required");
  if (!has_source) return Fail(error, Errc::kMissingField, Field(where, "source") + " is required");
  if (!has_kind) return Fail(error, Errc::kMissingField, Field(where, "kind") + " is required");
  return true;
}

void WriteEnvelope(const rapidjson::Value& event, JsonWriter& writer) {
  static constexpr const char* kOrder[] = {"id",        "ts",        "source", "kind",
                                           "session",   "cwd",       "host",   "pid",
                                           "truncated", "orig_size", "payload"};
  writer.StartObject();
  for (const char* key : kOrder) {
    auto it = event.FindMember(key);
    if (it == event.MemberEnd()) continue;
    writer.Key(key, static_cast<rapidjson::SizeType>(std::strlen(key)));
    it->value.Accept(writer);
  }
  writer.EndObject();
}

std::string BuildEventBody(const EnvelopeFields& f, bool durable) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  auto str = [&](const char* key, std::string_view v) {
    w.Key(key);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  w.Key("v");
  w.Uint(1);
  if (durable) {
    w.Key("durable");
    w.Bool(true);
  }
  w.Key("event");
  w.StartObject();
  str("id", f.id);
  w.Key("ts");
  w.Int64(f.ts);
  str("source", f.source);
  str("kind", f.kind);
  if (!f.session.empty()) str("session", f.session);
  if (!f.cwd.empty()) str("cwd", f.cwd);
  if (!f.host.empty()) str("host", f.host);
  if (f.pid >= 0) {
    w.Key("pid");
    w.Int64(f.pid);
  }
  if (f.truncated) {
    w.Key("truncated");
    w.Bool(true);
    w.Key("orig_size");
    w.Uint64(f.orig_size);
  }
  if (!f.payload_json.empty()) {
    w.Key("payload");
    w.RawValue(f.payload_json.data(), f.payload_json.size(), rapidjson::kObjectType);
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::string NewEventId() {
  unsigned char bytes[16];
  size_t got = 0;
  while (got < sizeof bytes) {
    const ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string id(32, '0');
  for (size_t i = 0; i < sizeof bytes; ++i) {
    id[2 * i] = kHex[bytes[i] >> 4];
    id[2 * i + 1] = kHex[bytes[i] & 0xf];
  }
  return id;
}

}  // namespace ferry::proto
