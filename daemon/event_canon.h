// The journal body of an event ferryd accepts (from a client or the spool): the envelope in
// canonical field order with its payload as received (numbers keep every digit, docs/protocol.md
// "Event envelope"), a payload nested deeper than proto::kMaxPayloadDepth kept as text, and,
// with [redact] local, secrets redacted first.
//
// Threads: any; the Redactor is shared read-only.
#pragma once

#include <cstddef>

#include "proto/messages.h"

namespace ferry {

class Redactor;

// Writes event `i` of `request` to `writer`. `redactor` may be null (no local redaction).
// A redacted payload is written from its redacted document, so only an event in which a rule
// matched can see a number written in another form (1.0e2 as 100.0); every other event keeps
// its payload byte for byte (but for the whitespace between tokens).
void WriteCanonicalEvent(const proto::EventRequest& request, size_t i, const Redactor* redactor,
                         proto::JsonWriter& writer);

}  // namespace ferry
