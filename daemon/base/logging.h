// ferryd's logging: spdlog to stderr. When stderr is connected to journald, lines carry a
// syslog priority prefix ("<6>" for info) and no timestamp, so journalctl shows each line's
// level and stamps it itself; otherwise "<time> ferryd[<pid>] <level>: <message>".
//
// Thread: SetUpLogging() once in main before any other thread; SetLogLevel() from the io
// thread (spdlog levels are atomic, so the other threads see it safely).
#pragma once

#include <string>

namespace ferry {

// True when `journal_stream` (the value of $JOURNAL_STREAM, "<device>:<inode>" in decimal,
// or null) names the file that `fd` is open on: systemd sets it for a service's stdout and
// stderr, and a child that redirected stderr elsewhere must not trust an inherited value.
bool IsJournalStream(const char* journal_stream, int fd);

void SetUpLogging(const std::string& level);
// Returns false (and changes nothing) for an unknown level name.
bool SetLogLevel(const std::string& level);

}  // namespace ferry
