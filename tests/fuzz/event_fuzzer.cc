// Fuzz target: the event envelope as ferryd validates and canonicalises it (proto/event.h,
// proto/messages.h; daemon/ingest/session.cc does EventRequest::Parse, then WriteEnvelope of
// each event into the journal record body), and a hook payload as the client wraps it
// (BuildEventBody). The first byte picks the mode, the rest is the text:
//   0: an EVENT body          1: an EVENT_BATCH body
//   2: a hook payload (--stdin / --data): JSON goes in as the payload, anything else as text
//
// Invariants: nothing crashes; a refusal says why; every accepted event's journal body
// (WriteEnvelope) parses and validates again and is a fixed point (written again, the same
// bytes), and ingest's copy of the bytes received, when it takes that path, is the same; a body
// built by BuildEventBody from any payload that is JSON within the depth limit (or from any bytes,
// as text) is accepted by ferryd; SanitizeUtf8 returns valid UTF-8 within its limit; the hook
// path's check without a document (ScanPayloadJson) gives ParsePayloadJson's verdict and error
// and the top-level strings FindMember finds.
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "proto/event.h"
#include "proto/messages.h"
#include "tests/fuzz/fuzz_util.h"

namespace ferry::proto {
namespace {

std::string JournalBody(const rapidjson::Value& event) {
  rapidjson::StringBuffer sb;
  JsonWriter writer(sb);
  WriteEnvelope(event, writer);
  return std::string(sb.GetString(), sb.GetSize());
}

// What the journal holds must read back as the same envelope.
void CheckCanonical(const rapidjson::Value& event) {
  const std::string body = JournalBody(event);
  FUZZ_CHECK(FirstInvalidUtf8(body) == std::string_view::npos, body);
  rapidjson::Document doc;
  Error error;
  FUZZ_CHECK(ParseJson(body, &doc, &error), error.message + " in " + body);
  FUZZ_CHECK(ValidateEnvelope(doc, "event", &error), error.message + " in " + body);
  const std::string again = JournalBody(doc);
  FUZZ_CHECK(again == body, body + "\n  became\n  " + again);
}

void CheckRequest(FrameType type, std::string_view body) {
  EventRequest request;
  Error error;
  if (!request.Parse(type, body, 1000, &error)) {
    FUZZ_CHECK(error.code != Errc::kOk && !error.message.empty());
    return;
  }
  FUZZ_CHECK(request.size() >= 1);
  for (size_t i = 0; i < request.size(); ++i) {
    CheckCanonical(request.at(i));
    // The bytes ingest journals as received (EventRequest::AsReceived, when it takes them) are
    // what WriteEnvelope writes.
    const std::string_view a = request.AsReceived(i);
    if (a.empty()) continue;
    rapidjson::StringBuffer reference;
    JsonWriter rw(reference);
    WriteEnvelope(request.at(i), rw, request.payload_json(i), request.payload_too_deep(i));
    const std::string_view b(reference.GetString(), reference.GetSize());
    FUZZ_CHECK(a == b, std::string(a) + "\n  but WriteEnvelope writes\n  " + std::string(b));
  }
}

// Depth of a parsed value, counted as ParseJson counts it (each object or array is a level).
int Depth(const rapidjson::Value& root) {
  int max_depth = 0;
  std::vector<std::pair<const rapidjson::Value*, int>> stack{{&root, 0}};
  while (!stack.empty()) {
    auto [v, d] = stack.back();
    stack.pop_back();
    if (v->IsObject()) {
      max_depth = std::max(max_depth, d + 1);
      for (const auto& m : v->GetObject()) stack.push_back({&m.value, d + 1});
    } else if (v->IsArray()) {
      max_depth = std::max(max_depth, d + 1);
      for (const auto& e : v->GetArray()) stack.push_back({&e, d + 1});
    }
  }
  return max_depth;
}

void CheckPayloadScan(std::string_view payload) {
  static constexpr WantedMember kWanted[] = {{"cwd"}, {"type"}, {"a", /*first_element=*/true}};
  rapidjson::Document doc;
  Error want_error, error;
  const bool want = ParsePayloadJson(payload, &doc, &want_error);
  std::string got[std::size(kWanted)];
  const bool ok = ScanPayloadJson(payload, kWanted, got, &error);
  FUZZ_CHECK(ok == want, error.message + " / " + want_error.message);
  if (!ok) {
    FUZZ_CHECK(error.message == want_error.message, error.message + " / " + want_error.message);
    return;
  }
  for (size_t i = 0; i < std::size(kWanted); ++i) {
    std::string expect;
    if (doc.IsObject()) {
      const std::string name(kWanted[i].name);
      auto it = doc.FindMember(name.c_str());
      const rapidjson::Value* v = it == doc.MemberEnd() ? nullptr : &it->value;
      if (v && kWanted[i].first_element) v = v->IsArray() && !v->Empty() ? &(*v)[0] : nullptr;
      if (v && v->IsString()) expect.assign(v->GetString(), v->GetStringLength());
    }
    FUZZ_CHECK(got[i] == expect, got[i] + " / " + expect);
  }
}

void CheckHookPayload(std::string_view payload) {
  CheckPayloadScan(payload);
  EnvelopeFields fields;
  fields.id = "0123456789abcdef0123456789abcdef";
  fields.ts = 1796334689144160208;
  fields.source = "fuzz";
  fields.kind = "payload";
  // Bytes from the OS go through SanitizeUtf8 inside BuildEventBody: feed some in.
  fields.cwd = payload.substr(0, 300);
  fields.session = payload.substr(0, 40);
  fields.pid = 42;
  rapidjson::Document doc;
  Error error;
  std::string text_payload;
  bool must_accept = true;
  if (!payload.empty() && ParseJson(payload, &doc, &error)) {
    fields.payload_json = payload;
    // The envelope puts the payload two levels down ({"event":{"payload":...}}).
    must_accept = Depth(doc) + 2 <= kMaxJsonDepth;
  } else {
    const std::string clean = SanitizeUtf8(payload);
    rapidjson::StringBuffer sb;
    JsonWriter writer(sb);
    writer.String(clean.data(), static_cast<rapidjson::SizeType>(clean.size()));
    text_payload.assign(sb.GetString(), sb.GetSize());
    fields.payload_json = text_payload;
    fields.payload_encoding = "text";
  }
  const std::string body = BuildEventBody(fields, /*durable=*/true);
  EventRequest request;
  const bool ok = request.Parse(FrameType::kEvent, body, 1, &error);
  if (must_accept) FUZZ_CHECK(ok, error.message);
  if (ok) CheckCanonical(request.at(0));
}

void CheckSanitize(std::string_view s) {
  for (size_t max_len : {size_t{0}, size_t{3}, size_t{64}, std::string_view::npos}) {
    const std::string clean = SanitizeUtf8(s, max_len);
    FUZZ_CHECK(clean.size() <= max_len);
    FUZZ_CHECK(FirstInvalidUtf8(clean) == std::string_view::npos);
    if (FirstInvalidUtf8(s) == std::string_view::npos && s.size() <= max_len) {
      FUZZ_CHECK(clean == s);
    }
  }
}

}  // namespace
}  // namespace ferry::proto

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  using ferry::proto::FrameType;
  switch (ferry::fuzz::Selector(&input) % 3) {
    case 0:
      ferry::proto::CheckRequest(FrameType::kEvent, input);
      break;
    case 1:
      ferry::proto::CheckRequest(FrameType::kEventBatch, input);
      break;
    default:
      ferry::proto::CheckHookPayload(input);
      ferry::proto::CheckSanitize(input);
      break;
  }
  return 0;
}
