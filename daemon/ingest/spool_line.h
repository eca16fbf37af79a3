// One line of a spool file (docs/protocol.md, "Spool"), as SpoolImporter reads it: a line
// that is blank (only spaces, tabs and CRs) is skipped; any other line must be an EVENT frame
// body ({"v":1,"event":{...}}), validated exactly as ferryd validates one from a socket.
// Pure, no I/O: split out of SpoolImporter::ImportFile so tests/fuzz/spool_fuzzer.cc runs it.
// Any thread.
#pragma once

#include <string_view>

#include "proto/messages.h"

namespace ferry {

enum class SpoolLine {
  kBlank,    // skip it
  kInvalid,  // *error says why; the file is kept as <name>.rejected
  kEvent,    // request->at(0) is the validated envelope
};

// `line` without its newline.
inline SpoolLine ParseSpoolLine(std::string_view line, proto::EventRequest* request,
                                proto::Error* error) {
  if (line.find_first_not_of(" \t\r") == std::string_view::npos) return SpoolLine::kBlank;
  return request->Parse(proto::FrameType::kEvent, line, 1, error) ? SpoolLine::kEvent
                                                                  : SpoolLine::kInvalid;
}

}  // namespace ferry
