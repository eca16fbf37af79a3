#pragma once
#include <string>

#include "client/conn.h"  // Clock

namespace ferry::client {
// `ferry emit ...`; argv holds the arguments after "emit". Returns the exit code.
int RunEmit(int argc, char** argv);
// RunEmit after stdin was read: `stdin_text` is the payload when argv names --stdin, host_pid
// goes in the envelope's pid, and --timeout-ms counts from `start`. `ferry relay` sends
// each event through here, so it is acked, spooled and logged exactly as emit's.
int EmitEvent(int argc, char** argv, std::string stdin_text, int host_pid, Clock::time_point start);
}  // namespace ferry::client
