// Fuzz target: the redactor (daemon/redact/redact.h) with the default rules, compiled once. The
// first byte picks the mode, the rest is the subject:
//   even: arbitrary bytes through RedactString (an event's text as a sink sends it)
//   odd:  JSON through RedactJson (an event as [redact] local and the sinks redact it)
//
// Invariants: nothing crashes; the count is 0 exactly when nothing changed; valid UTF-8
// stays valid UTF-8; redacted JSON still parses; and the output holds nothing the detectors
// match: redacting it again changes nothing. The prefilter's 16-byte candidate step answers
// as the pair table alone does (MayHoldTrigger == MayHoldTriggerBytewise) on every input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/redact/detectors.h"
#include "daemon/redact/redact.h"
#include "proto/event.h"
#include "tests/fuzz/fuzz_util.h"

namespace ferry {
namespace {

const Redactor& DefaultRedactor() {
  static const std::shared_ptr<const Redactor> redactor = [] {
    std::shared_ptr<const Redactor> r;
    if (!Redactor::Compile(RedactOptions(), &r).ok()) std::abort();
    return r;
  }();
  return *redactor;
}

std::string Serialize(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter writer(sb);
  v.Accept(writer);
  return std::string(sb.GetString(), sb.GetSize());
}

void RedactText(std::string_view input) {
  const Redactor& r = DefaultRedactor();
  std::string text(input);
  const size_t n = r.RedactString(&text);
  FUZZ_CHECK((n == 0) == (text == input), text);
  if (proto::FirstInvalidUtf8(input) == std::string_view::npos) {
    FUZZ_CHECK(proto::FirstInvalidUtf8(text) == std::string_view::npos, text);
  }
  std::string again = text;
  FUZZ_CHECK(r.RedactString(&again) == 0, text + "\n  redacted again:\n  " + again);
}

void RedactJson(std::string_view input) {
  rapidjson::Document doc;
  proto::Error error;
  if (!proto::ParseJson(input, &doc, &error)) return;
  const Redactor& r = DefaultRedactor();
  const std::string before = Serialize(doc);
  const size_t n = r.RedactJson(&doc, doc.GetAllocator());
  const std::string out = Serialize(doc);
  FUZZ_CHECK((n == 0) == (out == before), out);
  FUZZ_CHECK(proto::FirstInvalidUtf8(out) == std::string_view::npos, out);
  rapidjson::Document back;
  FUZZ_CHECK(proto::ParseJson(out, &back, &error), error.message + " in " + out);
  FUZZ_CHECK(r.RedactJson(&back, back.GetAllocator()) == 0,
             out + "\n  redacted again:\n  " + Serialize(back));
}

}  // namespace
}  // namespace ferry

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  FUZZ_CHECK(ferry::redact::MayHoldTrigger(input) == ferry::redact::MayHoldTriggerBytewise(input),
             input);
  if (ferry::fuzz::Selector(&input) & 1) {
    ferry::RedactJson(input);
  } else {
    ferry::RedactText(input);
  }
  return 0;
}
