// The flag parsing of every ferry command (client/args.h), called without running a command:
// each flag's value lands in its field, and every refusal has its exact message and exit code.
#include "client/args.h"

#include <catch2/catch.hpp>
#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

namespace ferry::client {
namespace {

// argv for a parser: the arguments after the command name, as mutable C strings.
class Argv {
 public:
  Argv(std::initializer_list<std::string> args) : strings_(args) {
    for (auto& s : strings_) ptrs_.push_back(s.data());
    ptrs_.push_back(nullptr);
  }
  int argc() const { return static_cast<int>(strings_.size()); }
  char** argv() { return ptrs_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> ptrs_;
};

template <typename Args, typename F>
std::string Refusal(F parse, Argv argv) {
  Args a;
  std::string error;
  REQUIRE(parse(argv.argc(), argv.argv(), &a, &error) == Parsed::kError);
  return error;
}

TEST_CASE("client args: global options take a value, spaced or after =", "[client_args]") {
  Argv argv{"--socket", "/s", "--state-dir=/d", "--config", "/c.toml", "--other"};
  GlobalOptions g;
  std::string error;
  int i = 0;
  REQUIRE(TakeGlobalOption(argv.argc(), argv.argv(), &i, &g, &error));
  CHECK(i == 1);
  i = 2;
  REQUIRE(TakeGlobalOption(argv.argc(), argv.argv(), &i, &g, &error));
  CHECK(i == 2);
  i = 3;
  REQUIRE(TakeGlobalOption(argv.argc(), argv.argv(), &i, &g, &error));
  CHECK(i == 4);
  i = 5;
  CHECK_FALSE(TakeGlobalOption(argv.argc(), argv.argv(), &i, &g, &error));
  CHECK(error.empty());
  CHECK(g.socket == "/s");
  CHECK(g.state_dir == "/d");
  CHECK(g.config == "/c.toml");

  for (const char* flag : {"--socket", "--state-dir", "--config"}) {
    Argv last{flag};
    GlobalOptions h;
    std::string e;
    int j = 0;
    REQUIRE(TakeGlobalOption(last.argc(), last.argv(), &j, &h, &e));
    CHECK(e == std::string(flag) + " needs a value");
  }
  // A longer flag that only starts like one is not it.
  Argv lookalike{"--sockets"};
  int k = 0;
  CHECK_FALSE(TakeGlobalOption(lookalike.argc(), lookalike.argv(), &k, &g, &error));
}

TEST_CASE("client args: ParseUint and ParseDurationNs", "[client_args]") {
  unsigned long long v = 7;
  CHECK(ParseUint("0", &v));
  CHECK(v == 0);
  CHECK(ParseUint("9999999999999999999", &v));  // 19 digits
  CHECK(v == 9999999999999999999ull);
  for (const char* bad : {"", "-1", "+1", "1.5", "12a", " 1", "10000000000000000000"}) {
    INFO(bad);
    CHECK_FALSE(ParseUint(bad, &v));
  }
  long long ns = 0;
  CHECK(ParseDurationNs("90s", &ns));
  CHECK(ns == 90'000'000'000LL);
  CHECK(ParseDurationNs("30m", &ns));
  CHECK(ns == 1800'000'000'000LL);
  CHECK(ParseDurationNs("2w", &ns));
  CHECK(ns == 14LL * 86400 * 1'000'000'000LL);
  CHECK(ParseDurationNs("36500d", &ns));  // 100 years of 365 days: the limit
  for (const char* bad : {"", "s", "10", "10x", "1.5h", "36501d", "-1d", "10 s"}) {
    INFO(bad);
    CHECK_FALSE(ParseDurationNs(bad, &ns));
  }
}

TEST_CASE("client args: emit takes every flag", "[client_args]") {
  Argv argv{"--source",
            "claude-code",
            "--kind=PreToolUse",
            "--session",
            "s1",
            "--cwd",
            "/w",
            "--data",
            "{\"a\":1}",
            "--durable",
            "--timeout-ms",
            "3600000",
            "--max-event-bytes=1024",
            "--strict",
            "--print-ack",
            "--socket",
            "/run/f.sock"};
  EmitArgs a;
  std::string error;
  REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(error.empty());
  CHECK(a.source == "claude-code");
  CHECK(a.kind == "PreToolUse");
  CHECK(a.session == "s1");
  CHECK(a.cwd == "/w");
  CHECK(a.has_data);
  CHECK(a.data == "{\"a\":1}");
  CHECK_FALSE(a.use_stdin);
  CHECK_FALSE(a.has_argv_json);
  CHECK(a.durable);
  CHECK(a.strict);
  CHECK(a.print_ack);
  CHECK(a.timeout_ms == 3600000);
  CHECK(a.max_event_bytes == 1024);
  CHECK(a.global.socket == "/run/f.sock");
}

TEST_CASE("client args: emit defaults, --stdin and --argv-json", "[client_args]") {
  {
    Argv argv{"--source", "bash", "--kind", "command"};
    EmitArgs a;
    std::string error;
    REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.timeout_ms == 50);
    CHECK(a.max_event_bytes == kDefaultMaxEventBytes);
    CHECK(kDefaultMaxEventBytes == 4128768);
    CHECK_FALSE(a.strict);
    CHECK_FALSE(a.has_data);
  }
  {
    // --stdin and --argv-json need no --kind: the payload may name the event.
    Argv argv{"--source", "codex", "--stdin"};
    EmitArgs a;
    std::string error;
    REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.use_stdin);
    CHECK(EmitNamesStdin(argv.argc(), argv.argv()));
  }
  {
    // Codex notify appends the JSON last; --argv-json may also stand last with no value.
    Argv argv{"--source", "codex", "--argv-json", "{\"type\":\"agent-turn-complete\"}"};
    EmitArgs a;
    std::string error;
    REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.has_argv_json);
    CHECK(a.argv_json == "{\"type\":\"agent-turn-complete\"}");
    CHECK_FALSE(EmitNamesStdin(argv.argc(), argv.argv()));
  }
  {
    Argv argv{"--source", "codex", "--argv-json"};
    EmitArgs a;
    std::string error;
    REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.has_argv_json);
    CHECK(a.argv_json.empty());
  }
  {
    Argv argv{"--source", "codex", "--argv-json={\"a\":1}"};
    EmitArgs a;
    std::string error;
    REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.argv_json == "{\"a\":1}");
  }
}

TEST_CASE("client args: emit --help wins over missing flags but not over unknown ones",
          "[client_args]") {
  for (const char* help : {"--help", "-h"}) {
    Argv argv{help};
    EmitArgs a;
    std::string error;
    CHECK(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kHelp);
  }
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--help", "--bogus"}) ==
        "emit: unknown argument \"--bogus\" (ferry emit --help lists them)");
}

TEST_CASE("client args: emit refusals, exact messages", "[client_args]") {
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--kind", "k"}) == "emit: --source is required");
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s"}) == "emit: --kind is required");
  CHECK(Refusal<EmitArgs>(ParseEmitArgs,
                          {"--source", "s", "--kind", "k", "--data", "1", "--stdin"}) ==
        "emit: use only one of --data, --stdin and --argv-json");
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s", "--stdin", "--argv-json", "{}"}) ==
        "emit: use only one of --data, --stdin and --argv-json");
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s", "--kind", "k", "-x"}) ==
        "emit: unknown argument \"-x\" (ferry emit --help lists them)");
  for (const char* flag : {"--source", "--kind", "--session", "--cwd", "--data", "--timeout-ms",
                           "--max-event-bytes"}) {
    INFO(flag);
    CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s", "--kind", "k", flag}) ==
          std::string(flag) + " needs a value");
  }
  CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s", "--kind", "k", "--socket"}) ==
        "--socket needs a value");
}

TEST_CASE("client args: emit numeric ranges", "[client_args]") {
  for (const char* bad : {"0", "3600001", "-5", "1e3", "", "abc"}) {
    INFO(bad);
    CHECK(Refusal<EmitArgs>(ParseEmitArgs, {"--source", "s", "--kind", "k", "--timeout-ms", bad}) ==
          "--timeout-ms must be a whole number of milliseconds in [1, 3600000], not \"" +
              std::string(bad) + "\"");
  }
  for (const char* bad : {"1023", "0", "x", "-1"}) {
    INFO(bad);
    CHECK(Refusal<EmitArgs>(ParseEmitArgs,
                            {"--source", "s", "--kind", "k", "--max-event-bytes", bad}) ==
          "--max-event-bytes must be a whole number of bytes, at least 1024, not \"" +
              std::string(bad) + "\"");
  }
  EmitArgs a;
  std::string error;
  Argv one{"--source", "s", "--kind", "k", "--timeout-ms=1"};
  REQUIRE(ParseEmitArgs(one.argc(), one.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.timeout_ms == 1);
}

TEST_CASE("client args: emit exits 0 on a parse error, 1 with --strict anywhere", "[client_args]") {
  Argv lax{"--bogus", "--source", "s"};
  CHECK(EmitParseErrorExitCode(lax.argc(), lax.argv()) == 0);
  Argv strict{"--bogus", "--strict"};  // --strict after the bad flag counts too
  CHECK(EmitParseErrorExitCode(strict.argc(), strict.argv()) == 1);
  CHECK(kUsageExitCode == 2);
}

TEST_CASE("client args: status", "[client_args]") {
  Argv argv{"--json", "--ack-lost", "--timeout-ms", "5", "--socket=/s"};
  StatusArgs a;
  std::string error;
  REQUIRE(ParseStatusArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.json);
  CHECK(a.ack_lost);
  CHECK(a.timeout_ms == 5);
  CHECK(a.global.socket == "/s");
  StatusArgs d;
  Argv none{};
  REQUIRE(ParseStatusArgs(none.argc(), none.argv(), &d, &error) == Parsed::kRun);
  CHECK(d.timeout_ms == 2000);
  CHECK_FALSE(d.json);

  Argv help{"--json", "-h"};
  CHECK(ParseStatusArgs(help.argc(), help.argv(), &d, &error) == Parsed::kHelp);
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--timeout-ms", "0"}) ==
        "--timeout-ms needs a positive integer");
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--timeout-ms", "x"}) ==
        "--timeout-ms needs a positive integer");
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--timeout-ms"}) == "--timeout-ms needs a value");
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--timeout"}) == "--timeout needs a value");
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--timeout", "5"}) ==
        "--timeout needs a duration such as 500ms, 30s, 5m or 1h");
  // --timeout DURATION is the one spelling; --timeout-ms N stays as a hidden alias.
  for (const auto& [args, ms] :
       {std::pair<Argv, unsigned long long>{Argv{"--timeout", "500ms"}, 500},
        {Argv{"--timeout=3s"}, 3000},
        {Argv{"--timeout-ms=70"}, 70}}) {
    Argv copy = args;
    StatusArgs t;
    REQUIRE(ParseStatusArgs(copy.argc(), copy.argv(), &t, &error) == Parsed::kRun);
    CHECK(t.timeout_ms == ms);
  }
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--verbose"}) ==
        "status: unknown argument \"--verbose\"");
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--state-dir"}) == "--state-dir needs a value");
  // The first error wins: --help after it is not reached.
  CHECK(Refusal<StatusArgs>(ParseStatusArgs, {"--bad", "--help"}) ==
        "status: unknown argument \"--bad\"");
}

TEST_CASE("client args: tail", "[client_args]") {
  Argv argv{"-f",        "--json",  "--from",   "42",    "--source",       "bash",
            "--kind",    "command", "--config", "/c",    "--session=3f2c", "--cwd",
            "src",       "--exit",  "nonzero",  "--utc", "--color",        "never",
            "--timeout", "2s"};
  TailArgs a;
  std::string error;
  REQUIRE(ParseTailArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.follow);
  CHECK(a.output == TailOutput::kJson);
  CHECK(a.from == 42);
  CHECK(a.last == 10);
  CHECK_FALSE(a.last_given);
  CHECK(a.source == "bash");
  CHECK(a.kind == "command");
  CHECK(a.session == "3f2c");
  CHECK(a.cwd == "src");
  CHECK(a.exit == TailArgs::Exit::kNonzero);
  CHECK(a.utc);
  CHECK(a.color == ColorMode::kNever);
  CHECK(a.timeout_ms == 2000);
  CHECK(a.global.config == "/c");
  for (Argv n : {Argv{"--last", "0"}, Argv{"-n", "0"}, Argv{"--lines", "0"}, Argv{"-n0"},
                 Argv{"--lines=0"}}) {
    TailArgs b;
    REQUIRE(ParseTailArgs(n.argc(), n.argv(), &b, &error) == Parsed::kRun);
    CHECK(b.last == 0);
    CHECK(b.last_given);
    CHECK_FALSE(b.all);
  }
  Argv all{"-n", "all", "--exit", "2", "-o", "cat", "--color=always"};
  TailArgs e;
  REQUIRE(ParseTailArgs(all.argc(), all.argv(), &e, &error) == Parsed::kRun);
  CHECK(e.all);
  CHECK(e.exit == TailArgs::Exit::kCode);
  CHECK(e.exit_code == 2);
  CHECK(e.output == TailOutput::kCat);
  CHECK(e.color == ColorMode::kAlways);
  CHECK(e.timeout_ms == kReadTimeoutMs);
  Argv follow{"--follow", "--output=short"};
  TailArgs c;
  REQUIRE(ParseTailArgs(follow.argc(), follow.argv(), &c, &error) == Parsed::kRun);
  CHECK(c.follow);
  CHECK(c.output == TailOutput::kShort);
  CHECK(c.color == ColorMode::kAuto);
  Argv help{"--help"};
  CHECK(ParseTailArgs(help.argc(), help.argv(), &c, &error) == Parsed::kHelp);

  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--from", "0"}) ==
        "--from needs a seq, a positive integer, not \"0\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--last", "-1"}) ==
        "-n needs a number of events or \"all\", not \"-1\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"-n", "x"}) ==
        "-n needs a number of events or \"all\", not \"x\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--source", ""}) == "--source needs a value");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--kind", ""}) == "--kind needs a value");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--kind"}) == "--kind needs a value");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--session="}) == "--session needs a value");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--exit", "256"}) ==
        "--exit needs an exit status (0-255) or \"nonzero\", not \"256\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"-o", "verbose"}) ==
        "-o needs short, json or cat, not \"verbose\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--color", "sometimes"}) ==
        "--color needs auto, always or never, not \"sometimes\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--since", "lunch"}) ==
        "--since needs a time: 1h, 30m or 2d ago; 2026-12-04T10:00; 10:00 (today); today; "
        "yesterday; not \"lunch\"");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--until", "2026-13-01"}).starts_with("--until needs"));
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--timeout", "soon"}) ==
        "--timeout needs a duration such as 500ms, 30s, 5m or 1h");
  CHECK(Refusal<TailArgs>(ParseTailArgs, {"--nope"}) ==
        "tail: unknown argument \"--nope\" (ferry tail --help)");
}

TEST_CASE("client args: tail --since and --until times", "[client_args]") {
  TimeArg t;
  REQUIRE(ParseTimeArg("1h", &t));
  CHECK(t.kind == TimeArg::Kind::kAgo);
  CHECK(t.ago_ns == 3600LL * 1'000'000'000LL);
  REQUIRE(ParseTimeArg("-90s", &t));
  CHECK(t.ago_ns == 90LL * 1'000'000'000LL);
  REQUIRE(ParseTimeArg("now", &t));
  CHECK((t.kind == TimeArg::Kind::kAgo && t.ago_ns == 0));
  REQUIRE(ParseTimeArg("2026-12-04T10:00", &t));
  CHECK(t.kind == TimeArg::Kind::kAbsolute);
  CHECK((t.year == 2026 && t.month == 12 && t.day == 4 && t.hour == 10 && t.minute == 0 &&
         t.second == 0 && !t.zulu));
  REQUIRE(ParseTimeArg("2026-12-04 10:00:30Z", &t));
  CHECK((t.second == 30 && t.zulu));
  REQUIRE(ParseTimeArg("2026-12-04", &t));
  CHECK((t.kind == TimeArg::Kind::kAbsolute && t.hour == 0));
  REQUIRE(ParseTimeArg("10:00", &t));
  CHECK((t.kind == TimeArg::Kind::kClock && t.hour == 10 && t.minute == 0));
  REQUIRE(ParseTimeArg("23:59:59", &t));
  CHECK(t.second == 59);
  REQUIRE(ParseTimeArg("yesterday", &t));
  CHECK((t.kind == TimeArg::Kind::kDay && t.day_offset == -1));
  REQUIRE(ParseTimeArg("today", &t));
  CHECK((t.kind == TimeArg::Kind::kDay && t.day_offset == 0));
  for (const char* bad :
       {"", "1", "1x", "24:00", "10:60", "10", "2026-12-04T", "2026-00-01", "2026-12-32",
        "2026-12-04T10", "2026-12-04X10:00", "10:00:00:00", "tomorrow", "1969-12-31"}) {
    TimeArg u;
    CHECK_FALSE(ParseTimeArg(bad, &u));
  }
}

TEST_CASE("client args: query", "[client_args]") {
  Argv argv{"--json", "--limit", "5", "--timeout-ms", "100", "SELECT 1"};
  QueryArgs a;
  std::string error;
  REQUIRE(ParseQueryArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.json);
  CHECK(a.limit == 5);
  CHECK(a.timeout_ms == 100);
  CHECK(a.sql == "SELECT 1");
  QueryArgs d;
  Argv plain{"SELECT 2"};
  REQUIRE(ParseQueryArgs(plain.argc(), plain.argv(), &d, &error) == Parsed::kRun);
  CHECK(d.timeout_ms == 30000);
  CHECK(d.limit == 0);
  Argv help{"SELECT 1", "--help"};
  QueryArgs h;
  CHECK(ParseQueryArgs(help.argc(), help.argv(), &h, &error) == Parsed::kHelp);

  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {}) ==
        "query: give a SQL statement (ferry query --help)");
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"--limit", "0", "SELECT 1"}) ==
        "--limit needs a positive integer");
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"--timeout-ms", "0", "SELECT 1"}) ==
        "--timeout-ms needs a positive integer");
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"--timeout", "0s", "SELECT 1"}) ==
        "--timeout needs a duration such as 500ms, 30s, 5m or 1h");
  Argv timeout{"--timeout", "2m", "--limit=7", "SELECT 3"};
  QueryArgs t;
  REQUIRE(ParseQueryArgs(timeout.argc(), timeout.argv(), &t, &error) == Parsed::kRun);
  CHECK(t.timeout_ms == 120000);
  CHECK(t.limit == 7);
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"--wat", "SELECT 1"}) ==
        "query: unknown option \"--wat\"");
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"SELECT 1", "-x"}) == "query: unknown argument \"-x\"");
  CHECK(Refusal<QueryArgs>(ParseQueryArgs, {"SELECT 1", "SELECT 2"}) ==
        "query: one SQL argument expected (quote the statement); got also \"SELECT 2\"");
}

TEST_CASE("client args: sessions", "[client_args]") {
  Argv argv{"--source", "claude-code", "--since", "12h", "--limit", "3", "--json"};
  QueryArgs a;
  std::string error;
  REQUIRE(ParseSessionsArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.source == "claude-code");
  CHECK(a.since_ns == 12LL * 3600 * 1'000'000'000LL);
  CHECK(a.limit == 3);
  CHECK(a.json);
  QueryArgs d;
  Argv none{};
  REQUIRE(ParseSessionsArgs(none.argc(), none.argv(), &d, &error) == Parsed::kRun);
  CHECK(d.since_ns == -1);
  CHECK(d.timeout_ms == kReadTimeoutMs);
  Argv help{"-h"};
  CHECK(ParseSessionsArgs(help.argc(), help.argv(), &d, &error) == Parsed::kHelp);
  CHECK(Refusal<QueryArgs>(ParseSessionsArgs, {"--since", "yesterday"}) ==
        "--since needs a duration such as 90s, 30m, 12h or 7d");
  CHECK(Refusal<QueryArgs>(ParseSessionsArgs, {"--since"}) == "--since needs a value");
  CHECK(Refusal<QueryArgs>(ParseSessionsArgs, {"SELECT 1"}) ==
        "sessions: unknown argument \"SELECT 1\"");
}

TEST_CASE("client args: stats and export", "[client_args]") {
  Argv argv{"--since", "7d", "--source", "zsh", "--json", "--timeout", "2m", "--socket", "/s"};
  StatsArgs s;
  std::string error;
  REQUIRE(ParseStatsArgs(argv.argc(), argv.argv(), &s, &error) == Parsed::kRun);
  CHECK(s.since_ns == 7LL * 86400 * 1'000'000'000LL);
  CHECK(s.source == "zsh");
  CHECK(s.json);
  CHECK(s.timeout_ms == 120000);
  CHECK(s.global.socket == "/s");
  StatsArgs sd;
  Argv none{};
  REQUIRE(ParseStatsArgs(none.argc(), none.argv(), &sd, &error) == Parsed::kRun);
  CHECK((sd.since_ns == -1 && !sd.json && sd.timeout_ms == 30000));
  CHECK(Refusal<StatsArgs>(ParseStatsArgs, {"--since", "soon"}) ==
        "--since needs a duration such as 90s, 30m, 12h or 7d");
  CHECK(Refusal<StatsArgs>(ParseStatsArgs, {"--limit", "3"}) ==
        "stats: unknown argument \"--limit\" (ferry stats --help)");

  Argv ex{"--format=jsonl", "--session", "3f2c", "--since", "30m", "--source", "codex"};
  ExportArgs e;
  REQUIRE(ParseExportArgs(ex.argc(), ex.argv(), &e, &error) == Parsed::kRun);
  CHECK((e.format == "jsonl" && e.session == "3f2c" && e.source == "codex"));
  CHECK(e.since_ns == 30LL * 60 * 1'000'000'000LL);
  Argv help{"-h"};
  CHECK(ParseExportArgs(help.argc(), help.argv(), &e, &error) == Parsed::kHelp);
  CHECK(Refusal<ExportArgs>(ParseExportArgs, {"--format", "csv"}) ==
        "--format: unknown format \"csv\" (jsonl is the one there is)");
  CHECK(Refusal<ExportArgs>(ParseExportArgs, {"--session", ""}) == "--session needs a value");
  CHECK(Refusal<ExportArgs>(ParseExportArgs, {"all"}) ==
        "export: unknown argument \"all\" (ferry export --help)");
}

TEST_CASE("client args: init", "[client_args]") {
  for (const char* shell : {"bash", "zsh", "fish"}) {
    Argv argv{shell};
    InitArgs a;
    std::string error;
    REQUIRE(ParseInitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.shell == shell);
  }
  Argv help{"bash", "--help"};
  InitArgs a;
  std::string error;
  CHECK(ParseInitArgs(help.argc(), help.argv(), &a, &error) == Parsed::kHelp);
  CHECK(Refusal<InitArgs>(ParseInitArgs, {}) ==
        "init: which shell? bash, zsh or fish (ferry init --help)");
  CHECK(Refusal<InitArgs>(ParseInitArgs, {"tcsh"}) ==
        "init: unknown shell \"tcsh\"; use bash, zsh or fish");
  CHECK(Refusal<InitArgs>(ParseInitArgs, {"bash", "zsh"}) ==
        "init: unexpected argument \"zsh\" (ferry init --help)");
  CHECK(Refusal<InitArgs>(ParseInitArgs, {"--socket", "/s"}) ==
        "init: unexpected argument \"--socket\" (ferry init --help)");
}

TEST_CASE("client args: hooks", "[client_args]") {
  Argv argv{"install", "claude-code", "--scope", "project", "--dry-run"};
  HooksArgs a;
  std::string error;
  REQUIRE(ParseHooksArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.action == "install");
  CHECK(a.tool == "claude-code");
  CHECK(a.scope == "project");
  CHECK(a.dry_run);
  Argv eq{"uninstall", "codex", "--scope=user"};
  HooksArgs b;
  REQUIRE(ParseHooksArgs(eq.argc(), eq.argv(), &b, &error) == Parsed::kRun);
  CHECK(b.action == "uninstall");
  CHECK(b.scope == "user");
  CHECK_FALSE(b.dry_run);
  Argv help{"install", "-h"};
  HooksArgs h;
  CHECK(ParseHooksArgs(help.argc(), help.argv(), &h, &error) == Parsed::kHelp);

  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {}) ==
        "hooks: say install or uninstall (ferry hooks --help)");
  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {"add", "codex"}) ==
        "hooks: say install or uninstall (ferry hooks --help)");
  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {"install", "codex", "--scope"}) ==
        "hooks: --scope needs a value: user or project");
  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {"install", "codex", "--scope", "system"}) ==
        "hooks: --scope is user or project, not \"system\"");
  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {"install", "codex", "cursor"}) ==
        "hooks: unexpected argument \"cursor\" (ferry hooks --help)");
  CHECK(Refusal<HooksArgs>(ParseHooksArgs, {"install", "--force"}) ==
        "hooks: unexpected argument \"--force\" (ferry hooks --help)");
}

TEST_CASE("client args: service", "[client_args]") {
  Argv argv{"install", "--dry-run", "--ferryd", "/opt/ferryd"};
  ServiceArgs a;
  std::string error;
  REQUIRE(ParseServiceArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.action == "install");
  CHECK(a.dry_run);
  CHECK(a.ferryd == "/opt/ferryd");
  Argv eq{"uninstall", "--ferryd=/x"};
  ServiceArgs b;
  REQUIRE(ParseServiceArgs(eq.argc(), eq.argv(), &b, &error) == Parsed::kRun);
  CHECK(b.action == "uninstall");
  CHECK(b.ferryd == "/x");
  Argv help{"--help"};
  CHECK(ParseServiceArgs(help.argc(), help.argv(), &b, &error) == Parsed::kHelp);

  CHECK(Refusal<ServiceArgs>(ParseServiceArgs, {}) ==
        "service: say install or uninstall (ferry service --help)");
  CHECK(Refusal<ServiceArgs>(ParseServiceArgs, {"--dry-run"}) ==
        "service: say install or uninstall (ferry service --help)");
  CHECK(Refusal<ServiceArgs>(ParseServiceArgs, {"install", "install"}) ==
        "service: unexpected argument \"install\" (ferry service --help)");
  CHECK(Refusal<ServiceArgs>(ParseServiceArgs, {"start"}) ==
        "service: unexpected argument \"start\" (ferry service --help)");
  CHECK(Refusal<ServiceArgs>(ParseServiceArgs, {"install", "--ferryd"}) ==
        "service: unexpected argument \"--ferryd\" (ferry service --help)");
}

TEST_CASE("client args: flush flags, values and refusals", "[client_args]") {
  Argv argv{"--sink", "up.1", "--wait", "--timeout", "30s", "--socket", "/s"};
  FlushArgs a;
  std::string error;
  REQUIRE(ParseFlushArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(error.empty());
  CHECK(a.sink == "up.1");
  CHECK(a.wait);
  CHECK(a.timeout_ms == 30000);
  CHECK(a.global.socket == "/s");
  Argv none{};
  FlushArgs b;
  REQUIRE(ParseFlushArgs(none.argc(), none.argv(), &b, &error) == Parsed::kRun);
  CHECK(b.sink.empty());
  CHECK_FALSE(b.wait);
  CHECK(b.timeout_ms == 0);
  for (const auto& [text, ms] : {std::pair<std::string, unsigned long long>{"500ms", 500},
                                 {"5m", 300000},
                                 {"1h", 3600000},
                                 {"168h", 7ull * 86400 * 1000}}) {
    Argv t{"--wait", "--timeout", text};
    FlushArgs c;
    REQUIRE(ParseFlushArgs(t.argc(), t.argv(), &c, &error) == Parsed::kRun);
    CHECK(c.timeout_ms == ms);
  }
  Argv help{"--wait", "-h"};
  CHECK(ParseFlushArgs(help.argc(), help.argv(), &b, &error) == Parsed::kHelp);
  Argv help2{"--help"};
  FlushArgs d;
  CHECK(ParseFlushArgs(help2.argc(), help2.argv(), &d, &error) == Parsed::kHelp);

  const std::string bad_timeout = "--timeout needs a duration such as 500ms, 30s, 5m or 1h";
  for (const char* t : {"0s", "10", "1d", "s", "-1s", "1.5s", "169h", ""}) {
    CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--wait", "--timeout", t}) == bad_timeout);
  }
  // Without --wait, --timeout is how long to wait for ferryd's answer.
  Argv no_wait{"--timeout", "5s"};
  FlushArgs e;
  REQUIRE(ParseFlushArgs(no_wait.argc(), no_wait.argv(), &e, &error) == Parsed::kRun);
  CHECK((e.timeout_ms == 5000 && !e.wait));
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--timeout"}) == "--timeout needs a value");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--sink"}) == "--sink needs a value");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--sink", "a/b"}) ==
        "--sink needs a sink name ([A-Za-z0-9_.-], 1-64 characters)");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--sink", ""}) ==
        "--sink needs a sink name ([A-Za-z0-9_.-], 1-64 characters)");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--sink", std::string(65, 'a')}) ==
        "--sink needs a sink name ([A-Za-z0-9_.-], 1-64 characters)");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--now"}) ==
        "unknown argument \"--now\" (ferry flush --help)");
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--socket"}) == "--socket needs a value");
  // The first refusal wins: a later --help is not reached.
  CHECK(Refusal<FlushArgs>(ParseFlushArgs, {"--x", "--help"}) ==
        "unknown argument \"--x\" (ferry flush --help)");
  CHECK(kUsageExitCode == 2);
}

TEST_CASE("client args: deadletter op, flags and refusals", "[client_args]") {
  std::string error;
  for (const char* op : {"list", "replay", "purge"}) {
    Argv argv{"--sink", "s_1", op, "--state-dir", "/d"};
    DeadletterArgs a;
    REQUIRE(ParseDeadletterArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
    CHECK(a.op == op);
    CHECK(a.sink == "s_1");
    CHECK_FALSE(a.json);
    CHECK(a.global.state_dir == "/d");
  }
  Argv list_json{"list", "--json"};
  DeadletterArgs b;
  REQUIRE(ParseDeadletterArgs(list_json.argc(), list_json.argv(), &b, &error) == Parsed::kRun);
  CHECK(b.json);
  CHECK(b.sink.empty());
  for (Argv help : {Argv{"help"}, Argv{"--help"}, Argv{"-h"}, Argv{"purge", "--help"}}) {
    DeadletterArgs c;
    CHECK(ParseDeadletterArgs(help.argc(), help.argv(), &c, &error) == Parsed::kHelp);
  }

  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {}) ==
        "say list, replay or purge (ferry deadletter --help)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"--sink", "s"}) ==
        "say list, replay or purge (ferry deadletter --help)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"drop"}) ==
        "unknown argument \"drop\" (ferry deadletter --help)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "purge"}) ==
        "unknown argument \"purge\" (ferry deadletter --help)");
  // "help" after an op is not help.
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "help"}) ==
        "unknown argument \"help\" (ferry deadletter --help)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"replay", "--json"}) ==
        "--json goes with list only");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"purge", "--json"}) ==
        "--json goes with list only");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "--sink"}) == "--sink needs a value");
  Argv timeout{"list", "--timeout", "750ms"};
  DeadletterArgs t;
  REQUIRE(ParseDeadletterArgs(timeout.argc(), timeout.argv(), &t, &error) == Parsed::kRun);
  CHECK(t.timeout_ms == 750);
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "--sink", "a b"}) ==
        "--sink needs a sink name ([A-Za-z0-9_.-], 1-64 characters)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "--all"}) ==
        "unknown argument \"--all\" (ferry deadletter --help)");
  CHECK(Refusal<DeadletterArgs>(ParseDeadletterArgs, {"list", "--config"}) ==
        "--config needs a value");
}

TEST_CASE("client args: doctor", "[client_args]") {
  Argv argv{"--json", "--timeout-ms", "7", "--state-dir", "/st"};
  DoctorArgs a;
  std::string error;
  REQUIRE(ParseDoctorArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.json);
  CHECK(a.timeout_ms == 7);
  CHECK(a.global.state_dir == "/st");
  DoctorArgs d;
  Argv none{};
  REQUIRE(ParseDoctorArgs(none.argc(), none.argv(), &d, &error) == Parsed::kRun);
  CHECK(d.timeout_ms == 2000);
  CHECK_FALSE(d.json);
  Argv help{"-h"};
  CHECK(ParseDoctorArgs(help.argc(), help.argv(), &d, &error) == Parsed::kHelp);
  CHECK(Refusal<DoctorArgs>(ParseDoctorArgs, {"--timeout-ms", "0"}) ==
        "--timeout-ms needs a positive integer");
  CHECK(Refusal<DoctorArgs>(ParseDoctorArgs, {"--timeout", "soon"}) ==
        "--timeout needs a duration such as 500ms, 30s, 5m or 1h");
  {
    Argv spelled{"--timeout", "3s"};
    DoctorArgs spelled_args;
    std::string err;
    REQUIRE(ParseDoctorArgs(spelled.argc(), spelled.argv(), &spelled_args, &err) == Parsed::kRun);
    CHECK(spelled_args.timeout_ms == 3000);
  }
  CHECK(Refusal<DoctorArgs>(ParseDoctorArgs, {"--fix"}) == "doctor: unknown argument \"--fix\"");
}

TEST_CASE("client args: emit --ephemeral, not with --durable", "[client_args][ephemeral]") {
  EmitArgs a;
  std::string error;
  Argv argv{"--source", "s", "--kind", "k", "--ephemeral"};
  REQUIRE(ParseEmitArgs(argv.argc(), argv.argv(), &a, &error) == Parsed::kRun);
  CHECK(a.ephemeral);
  CHECK_FALSE(a.durable);
  CHECK(Refusal<EmitArgs>(ParseEmitArgs,
                          {"--source", "s", "--kind", "k", "--ephemeral", "--durable"}) ==
        "emit: --durable and --ephemeral exclude each other (an ephemeral event is never "
        "written to disk)");
}

}  // namespace
}  // namespace ferry::client
