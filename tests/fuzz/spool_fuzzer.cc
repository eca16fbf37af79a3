// Fuzz target: the spool importer's line parsing (daemon/ingest/spool_line.h, as
// SpoolImporter::ImportFile applies it): the input is a spool file's bytes. Lines are split
// at '\n' as ImportFile does (a last line without its newline is torn and skipped); each
// line is parsed with ParseSpoolLine, and each event is written as its journal body
// (WriteEnvelope), plainly and after [redact] local = true redaction (default rules, as
// ImportFile does with a local redactor).
//
// Invariants: nothing crashes; an invalid line says why; a blank line is only white space;
// each journal body, redacted or not, is valid UTF-8 JSON that validates as an envelope and
// is a fixed point (parsed and written again: the same bytes); the id is never changed.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/ingest/spool_line.h"
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

std::string JournalBody(const rapidjson::Value& event) {
  rapidjson::StringBuffer sb;
  proto::JsonWriter writer(sb);
  proto::WriteEnvelope(event, writer);
  return std::string(sb.GetString(), sb.GetSize());
}

void CheckJournalBody(const std::string& body, std::string_view id) {
  FUZZ_CHECK(proto::FirstInvalidUtf8(body) == std::string_view::npos, body);
  rapidjson::Document doc;
  proto::Error error;
  FUZZ_CHECK(proto::ParseJson(body, &doc, &error), error.message + " in " + body);
  FUZZ_CHECK(proto::ValidateEnvelope(doc, "event", &error), error.message + " in " + body);
  const auto& doc_id = doc["id"];
  FUZZ_CHECK(std::string_view(doc_id.GetString(), doc_id.GetStringLength()) == id, body);
  FUZZ_CHECK(JournalBody(doc) == body, body);
}

void ImportLines(std::string_view text) {
  proto::EventRequest request;
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) break;  // torn: skipped, counted
    const std::string_view line = text.substr(pos, nl - pos);
    pos = nl + 1;
    proto::Error error;
    const SpoolLine kind = ParseSpoolLine(line, &request, &error);
    if (kind == SpoolLine::kBlank) {
      FUZZ_CHECK(line.find_first_not_of(" \t\r") == std::string_view::npos);
      continue;
    }
    if (kind == SpoolLine::kInvalid) {
      FUZZ_CHECK(error.code != proto::Errc::kOk && !error.message.empty());
      continue;
    }
    FUZZ_CHECK(request.size() == 1);
    const rapidjson::Value& event = request.at(0);
    const std::string id(event["id"].GetString(), event["id"].GetStringLength());
    CheckJournalBody(JournalBody(event), id);

    rapidjson::Document copy;
    copy.CopyFrom(event, copy.GetAllocator());
    DefaultRedactor().RedactJson(&copy, copy.GetAllocator());
    CheckJournalBody(JournalBody(copy), id);
  }
}

}  // namespace
}  // namespace ferry

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::ImportLines(std::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
