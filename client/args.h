// The flags of every ferry command, parsed without running the command (tests/unit/
// client_args_test.cc calls these directly). Each Parse* function reads argv (the arguments
// after the command name), fills its struct and returns what to do next:
//   kRun   run the command with the parsed options;
//   kHelp  --help or -h was given: print the command's help on stdout, exit 0;
//   kError *error holds the message (without the "ferry: " prefix that Complain adds);
//          the command exits ParseErrorExitCode (2, except for emit: see there).
// No function here does I/O, reads the environment or the config file: resolving --socket,
// --state-dir and --config (flag, env, config, default) is common.h's ResolveSocket/
// ResolveStateDir, done by the command after parsing. Any thread may call these; they share
// no state. Kept free of rapidjson and of anything beyond libstdc++ and proto/paths (sink
// names) so that `ferry` stays lean.
#pragma once

#include <string>
#include <string_view>

namespace ferry::client {

struct GlobalOptions {
  std::string socket;     // --socket
  std::string state_dir;  // --state-dir
  std::string config;     // --config
};

enum class Parsed { kRun, kHelp, kError };

// Consumes a global option (--socket, --state-dir, --config; also as --name=value) at
// argv[*i], advancing *i past its value. Returns true if it was one; sets *error to
// "--name needs a value" when its value is missing.
bool TakeGlobalOption(int argc, char** argv, int* i, GlobalOptions* opts, std::string* error);

// Parses a non-negative decimal integer of at most 19 digits; false for anything else.
bool ParseUint(std::string_view text, unsigned long long* out);

// "90s", "30m", "12h", "7d", "2w" as nanoseconds; false for anything else or over 100 years.
bool ParseDurationNs(std::string_view text, long long* ns);

// Just under the daemon's 4 MiB frame limit, leaving room for the envelope and the header.
inline constexpr unsigned long long kDefaultMaxEventBytes = (4u << 20) - (64u << 10);

struct EmitArgs {
  GlobalOptions global;
  std::string source, kind, session, cwd;
  std::string_view data, argv_json;  // views into argv, which outlives the command: no copy
  bool has_data = false, use_stdin = false, has_argv_json = false;
  bool durable = false, strict = false, print_ack = false;
  bool ephemeral = false;  // --ephemeral: for live tails only, never journaled nor spooled
  unsigned long long timeout_ms = 50;                          // [1, 3600000]
  unsigned long long max_event_bytes = kDefaultMaxEventBytes;  // >= 1024
};
Parsed ParseEmitArgs(int argc, char** argv, EmitArgs* a, std::string* error);
// emit never fails a hook: a parse error exits 0, or 1 when --strict appears anywhere in argv
// (even after the bad argument).
int EmitParseErrorExitCode(int argc, char** argv);
// True when argv names --stdin anywhere: emit drains stdin before parsing can fail.
bool EmitNamesStdin(int argc, char** argv);

struct StatusArgs {
  GlobalOptions global;
  bool json = false, ack_lost = false;
  unsigned long long timeout_ms = 2000;  // --timeout DURATION (or the hidden --timeout-ms N)
};
Parsed ParseStatusArgs(int argc, char** argv, StatusArgs* a, std::string* error);

// When, for `tail --since/--until`: parsed here without reading the clock or the time zone;
// client/tail.cc resolves it (local time, or UTC with --utc or a trailing Z).
struct TimeArg {
  enum class Kind { kNone, kAgo, kAbsolute, kClock, kDay };
  Kind kind = Kind::kNone;
  long long ago_ns = 0;  // kAgo: "1h", "90s", "2d" or "now" (0); a leading "-" is allowed
  // kAbsolute: "2026-12-04", "2026-12-04T10:00", "2026-12-04 10:00:30" (T or a space).
  int year = 0, month = 0, day = 0;
  int hour = 0, minute = 0, second = 0;  // kAbsolute and kClock ("10:00", "10:00:30": today)
  int day_offset = 0;                    // kDay: "today" 0, "yesterday" -1 (at 00:00)
  bool zulu = false;                     // a trailing "Z": UTC whatever --utc says
};
// Parses the forms above; false for anything else (or a field out of range).
bool ParseTimeArg(std::string_view text, TimeArg* out);

// --timeout DURATION (500ms, 30s, 5m, 1h; ParseDurationMs) or its hidden alias --timeout-ms N,
// spaced or after "=". True when argv[*i] is one of them (then *error may be set).
bool TakeTimeout(int argc, char** argv, int* i, unsigned long long* ms, std::string* error);
// "--name VALUE" or "--name=VALUE" at argv[*i]: true when argv[*i] is this flag; then *value
// holds its value, or *error says it is missing (args_read.cc).
bool TakeValue(int argc, char** argv, int* i, std::string_view name, std::string* value,
               std::string* error);
// What follows "--since" or "--until" when its value is not a time (ParseTimeArg).
inline constexpr const char* kBadTime =
    " needs a time: 1h, 30m or 2d ago; 2026-12-04T10:00; 10:00 (today); today; yesterday";

// Read commands wait this long for ferryd's answer by default; a ferryd that accepted the
// connection but has not answered by then is "not answering" (exit 3).
inline constexpr unsigned long long kReadTimeoutMs = 10000;

enum class TailOutput { kShort, kJson, kCat };
enum class ColorMode { kAuto, kAlways, kNever };
// --color auto|always|never at argv[*i] (tail, search): true when argv[*i] is it.
bool TakeColor(int argc, char** argv, int* i, ColorMode* color, std::string* error);

struct TailArgs {
  GlobalOptions global;
  bool follow = false;
  TailOutput output = TailOutput::kShort;  // -o short|json|cat; --json is -o json
  ColorMode color = ColorMode::kAuto;      // --color auto|always|never
  bool utc = false;                        // --utc: print (and read --since/--until as) UTC
  unsigned long long from = 0;             // --from N (> 0); 0: not given
  unsigned long long last = 10;            // -n N, --lines N, --last N (the protocol's default)
  bool last_given = false;                 // -n was given (else --since means every event since)
  bool all = false;                        // -n all
  std::string source, kind;                // applied by ferryd
  std::string session, cwd;                // applied here: session id or its start; cwd or below it
  enum class Exit { kAny, kCode, kNonzero } exit = Exit::kAny;  // --exit N|nonzero
  long long exit_code = 0;
  TimeArg since, until;
  unsigned long long timeout_ms = kReadTimeoutMs;  // wait for each answer (not with -f)
};
Parsed ParseTailArgs(int argc, char** argv, TailArgs* a, std::string* error);

// query and sessions share --json, --limit N (> 0) and --timeout DURATION.
struct QueryArgs {
  GlobalOptions global;
  bool json = false;
  unsigned long long limit = 0;           // 0: not given
  unsigned long long timeout_ms = 30000;  // query 30 s, sessions kReadTimeoutMs
  std::string sql;                        // query: the one SQL argument
  std::string source;                     // sessions --source
  long long since_ns = -1;                // sessions --since; -1: not given
};
Parsed ParseQueryArgs(int argc, char** argv, QueryArgs* a, std::string* error);
Parsed ParseSessionsArgs(int argc, char** argv, QueryArgs* a, std::string* error);

// stats: --json, --source S, --since DURATION, --timeout DURATION (default 30 s).
struct StatsArgs {
  GlobalOptions global;
  bool json = false;
  std::string source;
  long long since_ns = -1;  // -1: not given
  unsigned long long timeout_ms = 30000;
};
Parsed ParseStatsArgs(int argc, char** argv, StatsArgs* a, std::string* error);

// export: --format jsonl (the only format, and the default), --since DURATION, --session ID
// (the id or its start), --source S, --timeout DURATION (each page's wait; default 30 s).
struct ExportArgs {
  GlobalOptions global;
  std::string format = "jsonl";
  std::string source, session;
  long long since_ns = -1;  // -1: not given
  unsigned long long timeout_ms = 30000;
};
Parsed ParseExportArgs(int argc, char** argv, ExportArgs* a, std::string* error);

// search: QUERY (several words are joined with spaces), --source S, --since DURATION|TIME
// (as tail's), --session PREFIX, --limit N (> 0, default 20), --json, --color
// auto|always|never, --timeout DURATION (default 30 s).
struct SearchArgs {
  GlobalOptions global;
  std::string query;
  std::string source, session;
  TimeArg since;
  unsigned long long limit = 20;
  bool json = false;
  ColorMode color = ColorMode::kAuto;
  unsigned long long timeout_ms = 30000;
};
Parsed ParseSearchArgs(int argc, char** argv, SearchArgs* a, std::string* error);
// transcript: SESSION (the id or its start; exactly one), --source S, --timeout DURATION
// (each page's wait; default 30 s).
struct TranscriptArgs {
  GlobalOptions global;
  std::string session, source;
  unsigned long long timeout_ms = 30000;
};
Parsed ParseTranscriptArgs(int argc, char** argv, TranscriptArgs* a, std::string* error);

struct InitArgs {
  std::string shell;  // bash, zsh or fish
};
Parsed ParseInitArgs(int argc, char** argv, InitArgs* a, std::string* error);

struct HooksArgs {
  std::string action;          // install or uninstall
  std::string tool;            // not checked here: hooks.cc knows the tools
  std::string scope = "user";  // user or project
  bool dry_run = false;
};
Parsed ParseHooksArgs(int argc, char** argv, HooksArgs* a, std::string* error);

struct ServiceArgs {
  std::string action;  // install or uninstall
  std::string ferryd;  // --ferryd PATH
  bool dry_run = false;
};
Parsed ParseServiceArgs(int argc, char** argv, ServiceArgs* a, std::string* error);

// "500ms", "30s", "5m", "1h" as milliseconds; false for anything else, 0, or over 7 days
// (poll() takes an int of milliseconds).
inline constexpr unsigned long long kMaxWaitMs = 7ull * 86400 * 1000;
bool ParseDurationMs(std::string_view text, unsigned long long* ms);

// flush and deadletter: *error holds the message without the "ferry flush: " /
// "ferry deadletter: " prefix that the command prints before it.
struct FlushArgs {
  GlobalOptions global;
  std::string sink;  // --sink NAME (a valid sink name); empty: every sink
  bool wait = false;
  // --timeout: with --wait, how long ferryd waits for the sinks (0: no limit); without it,
  // how long to wait for ferryd's answer (0: kReadTimeoutMs).
  unsigned long long timeout_ms = 0;
};
Parsed ParseFlushArgs(int argc, char** argv, FlushArgs* a, std::string* error);

struct DeadletterArgs {
  GlobalOptions global;
  std::string op;     // list, replay or purge
  std::string sink;   // --sink NAME (a valid sink name); empty: every sink
  bool json = false;  // list only
  unsigned long long timeout_ms = kReadTimeoutMs;  // --timeout: wait for ferryd's answer
};
// "help" as the first word (before an op) is --help too.
Parsed ParseDeadletterArgs(int argc, char** argv, DeadletterArgs* a, std::string* error);

// doctor: --json, --timeout-ms N (> 0; each wait on ferryd), and the global options.
struct DoctorArgs {
  GlobalOptions global;
  bool json = false;
  unsigned long long timeout_ms = 2000;
};
Parsed ParseDoctorArgs(int argc, char** argv, DoctorArgs* a, std::string* error);

// relay (client/relay.h): --source S and --session ID (both required), --shell-pid N (> 0;
// required unless --stdin), --fifo PATH, --stdin, --timeout-ms N (each event's budget, as
// emit's; 0: emit's default) and the global options, which it passes on to each event.
struct RelayArgs {
  GlobalOptions global;
  std::string source, session, fifo;
  unsigned long long shell_pid = 0;
  bool use_stdin = false;
  unsigned long long timeout_ms = 0;
};
Parsed ParseRelayArgs(int argc, char** argv, RelayArgs* a, std::string* error);

// The exit code of a parse error for every command but emit.
inline constexpr int kUsageExitCode = 2;

}  // namespace ferry::client
