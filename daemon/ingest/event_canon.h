// The journal body of an event ferryd accepts (from a client or the spool): the envelope in
// canonical field order with its payload as received (numbers keep every digit, docs/protocol.md
// "Event envelope"), a payload nested deeper than proto::kMaxPayloadDepth kept as text, and,
// with [redact] local, secrets redacted first.
//
// Threads: any; the Redactor is shared read-only.
#pragma once

#include <cstddef>
#include <string_view>

#include "proto/messages.h"

namespace ferry {

class Redactor;

// Writes event `i` of `request` to `writer`. `redactor` may be null (no local redaction).
// The payload keeps its bytes but for the whitespace between tokens; when a rule matched in
// it, its strings are the redacted ones (re-escaped) and its numbers still the bytes received.
void WriteCanonicalEvent(const proto::EventRequest& request, size_t i, const Redactor* redactor,
                         proto::JsonWriter& writer);

// The same body, as a view: of the event's bytes in the request when they are that body
// already (written canonically by the client, nothing to redact or relabel: no copy, no
// rewrite), else of `buffer`, cleared and written with WriteCanonicalEvent. Valid while both
// the request's body and `buffer` are unchanged.
std::string_view CanonicalEventBody(const proto::EventRequest& request, size_t i,
                                    const Redactor* redactor, rapidjson::StringBuffer& buffer);

}  // namespace ferry
