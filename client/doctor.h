// `ferry doctor`: one command that checks what users get wrong (ferryd reachable and healthy,
// socket and state permissions, the config, each agent's hooks installed once and working,
// the shell snippet, the spool, the sinks, hook latency) and prints, for each problem, the
// command that fixes it (docs/operations.md "ferry doctor"). Links no SQLite or Boost: the
// config is checked by running `ferryd --check-config`, the store read through QUERY.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "client/args.h"

namespace ferry::client {

// argv holds the arguments after "doctor". Exit: 0 every check ok, 1 a problem found (a warn
// or FAIL line), 2 usage, 3 ferryd not reachable (the checks that need no ferryd still ran).
int RunDoctor(int argc, char** argv);

// One line of the report.
struct DoctorCheck {
  enum Status { kOk, kWarn, kFail } status = kOk;
  std::string name;     // "daemon", "hooks codex", ...
  std::string message;  // what was found, with paths
  std::string fix;      // the command (or step) that fixes it; "" when ok
};

// A child process run to completion or until `timeout_ms`, with all of `input` written to
// its stdin while its stdout and stderr are read.
struct ProgramRun {
  bool started = false;       // fork and exec worked
  bool timed_out = false;     // killed (SIGKILL) at the deadline
  int exit_code = -1;         // -1 when it died from a signal
  bool stdin_broken = false;  // it closed stdin before taking all of `input` (EPIPE)
  std::string out, err;
  double ms = 0;  // from start to exit
};
ProgramRun RunProgram(const std::vector<std::string>& argv,
                      const std::vector<std::pair<std::string, std::string>>& env,
                      std::string_view input, int timeout_ms);

// The config check: runs `ferryd --check-config` (the ferryd next to this ferry, else on
// PATH, else the installed one) on the config ferryd would read (client/doctor_run.cc).
void DoctorConfig(const GlobalOptions& global, std::vector<DoctorCheck>* out);

// The hook checks (client/hooks_doctor.cc): for each host, ferry's entries in the user and
// project config files (installed once, every event, timeouts), Cursor running Claude Code's
// hooks too, and each installed command run once with a sample payload against a throwaway
// socket and state directory, so nothing is recorded.
void DoctorHooks(std::vector<DoctorCheck>* out);

}  // namespace ferry::client
