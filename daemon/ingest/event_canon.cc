#include "daemon/ingest/event_canon.h"

#include <string>
#include <vector>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "daemon/redact/redact.h"

namespace ferry {
namespace {

// Replays the payload's bytes to the writer, taking every string and key from the redacted
// copy (in document order: redaction changes strings, never the shape) and every number as
// it was received.
class RedactedReplay {
 public:
  RedactedReplay(const std::vector<const rapidjson::Value*>& strings, proto::JsonWriter& w)
      : strings_(strings), w_(w) {}
  bool Null() { return w_.Null(); }
  bool Bool(bool b) { return w_.Bool(b); }
  bool Int(int) { return false; }  // numbers arrive raw (kParseNumbersAsStringsFlag)
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    return w_.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char*, rapidjson::SizeType, bool) {
    const rapidjson::Value* v = Next();
    return v && w_.String(v->GetString(), v->GetStringLength());
  }
  bool Key(const char*, rapidjson::SizeType, bool) {
    const rapidjson::Value* v = Next();
    return v && w_.Key(v->GetString(), v->GetStringLength());
  }
  bool StartObject() { return w_.StartObject(); }
  bool EndObject(rapidjson::SizeType n) { return w_.EndObject(n); }
  bool StartArray() { return w_.StartArray(); }
  bool EndArray(rapidjson::SizeType n) { return w_.EndArray(n); }

 private:
  const rapidjson::Value* Next() {
    return next_ < strings_.size() && strings_[next_]->IsString() ? strings_[next_++] : nullptr;
  }
  const std::vector<const rapidjson::Value*>& strings_;
  proto::JsonWriter& w_;
  size_t next_ = 0;
};

// The strings (object keys and string values) of `root` in document order, iteratively.
std::vector<const rapidjson::Value*> StringsInOrder(const rapidjson::Value& root) {
  std::vector<const rapidjson::Value*> out, stack{&root};
  while (!stack.empty()) {
    const rapidjson::Value* v = stack.back();
    stack.pop_back();
    if (v->IsString()) {
      out.push_back(v);
    } else if (v->IsArray()) {
      for (auto it = v->End(); it != v->Begin();) stack.push_back(&*--it);
    } else if (v->IsObject()) {
      for (auto it = v->MemberEnd(); it != v->MemberBegin();) {
        --it;
        stack.push_back(&it->value);
        stack.push_back(&it->name);
      }
    }
  }
  return out;
}

// The redacted payload `redacted` written with the numbers of `raw` (its bytes as received).
// Empty if the two do not line up (they always do; the caller then falls back to `redacted`).
std::string ReplayRedacted(std::string_view raw, const rapidjson::Value& redacted) {
  const std::vector<const rapidjson::Value*> strings = StringsInOrder(redacted);
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  RedactedReplay replay(strings, w);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(raw.data(), raw.size());
  const auto result =
      reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(ms,
                                                                                           replay);
  if (result.IsError()) return {};
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

void WriteCanonicalEvent(const proto::EventRequest& request, size_t i, const Redactor* redactor,
                         proto::JsonWriter& writer) {
  if (!redactor) {
    request.WriteEnvelope(i, writer);
    return;
  }
  const rapidjson::Value& event = request.at(i);
  rapidjson::Document copy;
  copy.CopyFrom(event, copy.GetAllocator());
  redactor->RedactJson(&copy, copy.GetAllocator());
  const std::string_view raw = request.payload_json(i);
  if (raw.empty()) {
    proto::WriteEnvelope(copy, writer);
    return;
  }
  if (request.payload_too_deep(i)) {  // kept as text: redact the text
    std::string text(raw);
    redactor->RedactString(&text);
    proto::WriteEnvelope(copy, writer, text, /*payload_as_text=*/true);
    return;
  }
  auto before = event.FindMember("payload");
  auto after = copy.FindMember("payload");
  if (before != event.MemberEnd() && after != copy.MemberEnd() && before->value == after->value) {
    proto::WriteEnvelope(copy, writer, raw);  // nothing redacted in it: as received
    return;
  }
  // Redacted: its strings from the redacted copy, its numbers still as received.
  const std::string replayed =
      after != copy.MemberEnd() ? ReplayRedacted(raw, after->value) : std::string();
  if (!replayed.empty()) {
    proto::WriteEnvelope(copy, writer, replayed);
  } else {
    proto::WriteEnvelope(copy, writer);
  }
}

}  // namespace ferry
