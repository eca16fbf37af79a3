#include "daemon/event_canon.h"

#include <string>

#include "daemon/redact.h"

namespace ferry {

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
  } else {
    proto::WriteEnvelope(copy, writer);
  }
}

}  // namespace ferry
