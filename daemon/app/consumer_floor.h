// Journal recovery at start, as far as the daemon is concerned: the floor the journal may
// continue numbering from (what consumers have already seen), and the log lines about what
// Journal::Open found (docs/journal-format.md "Recovery").
//
// Thread: the io thread, at start, before the consumer threads run.
#pragma once

#include <cstdint>
#include <string>

#include "daemon/config/config.h"
#include "daemon/journal/journal.h"

namespace ferry {

// The lowest seq the journal may continue with: one above every seq a consumer has seen
// (ferry.db's cursor when the store is enabled; every sink's cursor and in-flight batch under
// <state>/cursors, read only). *source names the consumer that set it. Never fails: an
// unreadable ferry.db is logged (a warning) and skipped, an unreadable cursor file skipped.
uint64_t ConsumerFloor(const Config& config, std::string* source);

// Logs what recovery did (strays moved aside, bytes dropped, seqs skipped) and the result.
void LogRecovery(const std::string& journal_dir, const RecoveryReport& report);

}  // namespace ferry
