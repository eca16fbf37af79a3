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
  unsigned long long timeout_ms = 2000;  // > 0
};
Parsed ParseStatusArgs(int argc, char** argv, StatusArgs* a, std::string* error);

struct TailArgs {
  GlobalOptions global;
  bool follow = false, json = false;
  unsigned long long from = 0;   // --from N (> 0); 0: not given
  unsigned long long last = 10;  // --last N / -n N (the protocol's default)
  std::string source, kind;
};
Parsed ParseTailArgs(int argc, char** argv, TailArgs* a, std::string* error);

// query and sessions share --json, --limit N (> 0) and --timeout-ms N (> 0).
struct QueryArgs {
  GlobalOptions global;
  bool json = false;
  unsigned long long limit = 0;  // 0: not given
  unsigned long long timeout_ms = 30000;
  std::string sql;          // query: the one SQL argument
  std::string source;       // sessions --source
  long long since_ns = -1;  // sessions --since; -1: not given
};
Parsed ParseQueryArgs(int argc, char** argv, QueryArgs* a, std::string* error);
Parsed ParseSessionsArgs(int argc, char** argv, QueryArgs* a, std::string* error);

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
  unsigned long long timeout_ms = 0;  // --timeout (needs --wait); 0: no limit
};
Parsed ParseFlushArgs(int argc, char** argv, FlushArgs* a, std::string* error);

struct DeadletterArgs {
  GlobalOptions global;
  std::string op;     // list, replay or purge
  std::string sink;   // --sink NAME (a valid sink name); empty: every sink
  bool json = false;  // list only
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

// The exit code of a parse error for every command but emit.
inline constexpr int kUsageExitCode = 2;

}  // namespace ferry::client
