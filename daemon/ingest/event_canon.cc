#include "daemon/ingest/event_canon.h"

#include <string>
#include <vector>

#include <rapidjson/memorystream.h>
#include <rapidjson/reader.h>

#include "daemon/ingest/source_classify.h"
#include "daemon/redact/redact.h"

namespace ferry {
namespace {

// Replays the payload's bytes to the writer, taking every string and key from the redacted
// copy (in document order) and every number as it was received. Redaction changes strings,
// and replaces a number or an array under a secret key by a string ({"password": 1234}):
// that string is written in its place and the raw value skipped. Any other difference in
// shape fails the replay (the caller then writes the redacted document).
class RedactedReplay {
 public:
  RedactedReplay(const std::vector<const rapidjson::Value*>& values, proto::JsonWriter& w)
      : values_(values), w_(w) {}
  bool Null() { return skip_ > 0 || (Next(rapidjson::kNullType) && w_.Null()); }
  bool Bool(bool b) {
    return skip_ > 0 || (Next(b ? rapidjson::kTrueType : rapidjson::kFalseType) && w_.Bool(b));
  }
  bool Int(int) { return false; }  // numbers arrive raw (kParseNumbersAsStringsFlag)
  bool Uint(unsigned) { return false; }
  bool Int64(int64_t) { return false; }
  bool Uint64(uint64_t) { return false; }
  bool Double(double) { return false; }
  bool RawNumber(const char* s, rapidjson::SizeType n, bool) {
    if (skip_ > 0) return true;
    const rapidjson::Value* v = Peek();
    if (v && v->IsString()) return WriteReplacement();
    return Next(rapidjson::kNumberType) && w_.RawValue(s, n, rapidjson::kNumberType);
  }
  bool String(const char*, rapidjson::SizeType, bool) {
    if (skip_ > 0) return true;
    const rapidjson::Value* v = Next(rapidjson::kStringType);
    return v && w_.String(v->GetString(), v->GetStringLength());
  }
  bool Key(const char*, rapidjson::SizeType, bool) {
    if (skip_ > 0) return true;
    const rapidjson::Value* v = Next(rapidjson::kStringType);
    return v && w_.Key(v->GetString(), v->GetStringLength());
  }
  bool StartObject() {
    if (skip_ > 0) return ++skip_ > 0;
    return Next(rapidjson::kObjectType) && w_.StartObject();
  }
  bool EndObject(rapidjson::SizeType n) { return skip_ > 0 ? --skip_ >= 0 : w_.EndObject(n); }
  bool StartArray() {
    if (skip_ > 0) return ++skip_ > 0;
    const rapidjson::Value* v = Peek();
    if (v && v->IsString()) {
      skip_ = 1;  // the whole array became this string
      return WriteReplacement();
    }
    return Next(rapidjson::kArrayType) && w_.StartArray();
  }
  bool EndArray(rapidjson::SizeType n) { return skip_ > 0 ? --skip_ >= 0 : w_.EndArray(n); }

 private:
  const rapidjson::Value* Peek() const { return next_ < values_.size() ? values_[next_] : nullptr; }
  // The next redacted value, if it has `type`.
  const rapidjson::Value* Next(rapidjson::Type type) {
    const rapidjson::Value* v = Peek();
    if (!v || v->GetType() != type) return nullptr;
    ++next_;
    return v;
  }
  bool WriteReplacement() {
    const rapidjson::Value* v = Next(rapidjson::kStringType);
    return v && w_.String(v->GetString(), v->GetStringLength());
  }
  const std::vector<const rapidjson::Value*>& values_;
  proto::JsonWriter& w_;
  size_t next_ = 0;
  int skip_ = 0;  // > 0: inside a raw array that was replaced; its nesting depth
};

// Every value of `root` (containers, object keys and scalars) in document order, iteratively.
std::vector<const rapidjson::Value*> ValuesInOrder(const rapidjson::Value& root) {
  std::vector<const rapidjson::Value*> out, stack{&root};
  while (!stack.empty()) {
    const rapidjson::Value* v = stack.back();
    stack.pop_back();
    out.push_back(v);
    if (v->IsArray()) {
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
// Empty if the two do not line up (the caller then falls back to `redacted`).
std::string ReplayRedacted(std::string_view raw, const rapidjson::Value& redacted) {
  const std::vector<const rapidjson::Value*> values = ValuesInOrder(redacted);
  rapidjson::StringBuffer sb;
  proto::JsonWriter w(sb);
  RedactedReplay replay(values, w);
  rapidjson::Reader reader;
  rapidjson::MemoryStream ms(raw.data(), raw.size());
  const auto result =
      reader.Parse<rapidjson::kParseIterativeFlag | rapidjson::kParseNumbersAsStringsFlag>(ms,
                                                                                           replay);
  if (result.IsError()) return {};
  return std::string(sb.GetString(), sb.GetSize());
}

}  // namespace

namespace {

// WriteCanonicalEvent with its two questions answered: the source from the payload, and
// whether a redaction rule may change the event.
void WriteCanonical(const proto::EventRequest& request, size_t i, const Redactor* redactor,
                    std::string_view relabel, bool may_change, proto::JsonWriter& writer) {
  const rapidjson::Value& event = request.at(i);
  // Nothing a rule could match (most events): as received, without a copy.
  if (!may_change) {
    request.WriteEnvelope(i, writer, relabel);
    return;
  }
  rapidjson::Document copy;
  copy.CopyFrom(event, copy.GetAllocator());
  redactor->RedactJson(&copy, copy.GetAllocator());
  const std::string_view raw = request.payload_json(i);
  if (raw.empty()) {
    proto::WriteEnvelope(copy, writer, {}, false, relabel);
    return;
  }
  if (request.payload_too_deep(i)) {  // kept as text: redact the text
    std::string text(raw);
    redactor->RedactString(&text);
    proto::WriteEnvelope(copy, writer, text, /*payload_as_text=*/true, relabel);
    return;
  }
  auto before = event.FindMember("payload");
  auto after = copy.FindMember("payload");
  if (before != event.MemberEnd() && after != copy.MemberEnd() && before->value == after->value) {
    proto::WriteEnvelope(copy, writer, raw, false, relabel);  // nothing redacted: as received
    return;
  }
  // Redacted: its strings from the redacted copy, its numbers still as received.
  const std::string replayed =
      after != copy.MemberEnd() ? ReplayRedacted(raw, after->value) : std::string();
  if (!replayed.empty()) {
    proto::WriteEnvelope(copy, writer, replayed, false, relabel);
  } else {
    proto::WriteEnvelope(copy, writer, {}, false, relabel);
  }
}

bool MayChange(const proto::EventRequest& request, size_t i, const Redactor* redactor) {
  return redactor && (request.payload_too_deep(i) || redactor->MayChange(request.at(i)));
}

// The event's bytes when the journal may hold them as received: no source to relabel, nothing a
// redaction rule could change, and canonical already (EventRequest::AsReceived). Else empty.
std::string_view AsReceivedBody(const proto::EventRequest& request, size_t i,
                                std::string_view relabel, bool may_change) {
  return relabel.empty() && !may_change ? request.AsReceived(i) : std::string_view();
}

}  // namespace

void WriteCanonicalEvent(const proto::EventRequest& request, size_t i, const Redactor* redactor,
                         proto::JsonWriter& writer) {
  const std::string_view relabel = RelabelSource(request.at(i));
  const bool may_change = MayChange(request, i, redactor);
  if (const std::string_view body = AsReceivedBody(request, i, relabel, may_change);
      !body.empty()) {
    writer.RawValue(body.data(), body.size(), rapidjson::kObjectType);
    return;
  }
  WriteCanonical(request, i, redactor, relabel, may_change, writer);
}

std::string_view CanonicalEventBody(const proto::EventRequest& request, size_t i,
                                    const Redactor* redactor, rapidjson::StringBuffer& buffer) {
  const std::string_view relabel = RelabelSource(request.at(i));
  const bool may_change = MayChange(request, i, redactor);
  if (const std::string_view body = AsReceivedBody(request, i, relabel, may_change);
      !body.empty()) {
    return body;
  }
  buffer.Clear();
  proto::JsonWriter writer(buffer);
  WriteCanonical(request, i, redactor, relabel, may_change, writer);
  return {buffer.GetString(), buffer.GetSize()};
}

}  // namespace ferry
