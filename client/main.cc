// ferry: the client. `emit` is the hook hot path; keep its start free of work.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "client/common.h"
#include "client/completions.h"
#include "client/doctor.h"
#include "client/emit.h"
#include "client/export.h"
#include "client/hooks.h"
#include "client/init.h"
#include "client/query.h"
#include "client/relay.h"
#include "client/search.h"
#include "client/service.h"
#include "client/sinks.h"
#include "client/stats.h"
#include "client/status.h"
#include "client/tail.h"
#include "client/transcript.h"

namespace {

constexpr const char* kHelp =
    "ferry: keep every shell and AI-agent hook event, without slowing anything down.\n"
    "\n"
    "usage: ferry <command> [options]\n"
    "\n"
    "commands:\n"
    "  emit         send one event to ferryd (the hook hot path; always exits 0 unless --strict)\n"
    "  status       show ferryd's state (--json for machines); exit 0 ok, 1 degraded, 3 not\n"
    "               running or not answering\n"
    "  init         print the bash, zsh or fish integration (eval \"$(ferry init zsh)\")\n"
    "  hooks        install or uninstall ferry's hooks in Claude Code, Codex, Cursor or Gemini "
    "CLI\n"
    "  service      install|uninstall ferryd as a systemd user service (--dry-run shows how)\n"
    "  tail         print recorded events, one readable line each (-f follows new ones; -n N,\n"
    "               --since 1h, --session, --cwd, --exit filter them)\n"
    "  sessions     recent sessions: when they started, how long they lasted, events, failures\n"
    "  query        run read-only SQL on the event store (ferry query --help)\n"
    "  stats        per host and project: sessions, prompts, tool calls, failures, p50/p95\n"
    "               durations, the slowest calls, shell exit statuses (--json for machines)\n"
    "  export       print every stored event as JSON lines (--since, --session, --source)\n"
    "  search       full-text search of prompts, tool calls, tool output and shell commands,\n"
    "               best match first, with how to resume the session (ferry search docker)\n"
    "  transcript   print an agent session's transcript as ferryd archived it (even after\n"
    "               the agent deleted it; --source)\n"
    "  flush        send what the upstream sinks have not yet sent, now (--wait to wait for it)\n"
    "  deadletter   list, replay or purge the events a sink's server rejected\n"
    "  doctor       check what usually goes wrong (daemon, hooks, shell, sinks) and how to fix it\n"
    "  completions  print shell completions: ferry completions bash|zsh|fish\n"
    "  relay        the per-shell process `ferry init` starts, so a prompt never forks\n"
    "\n"
    "tail, sessions, query, stats, export, search, transcript and deadletter list work\n"
    "when ferryd is down (read-only).\n"
    "Commands that wait for ferryd take --timeout DURATION (500ms, 30s, 5m; defaults in\n"
    "each command's --help); a ferryd that accepts but does not answer in time exits 3.\n"
    "\n"
    "options for every command:\n"
    "  --socket PATH     ferryd's socket (env FERRY_SOCKET; default\n"
    "                    $XDG_RUNTIME_DIR/ferry/ferry.sock or /tmp/ferry-$UID/ferry.sock)\n"
    "  --state-dir DIR   state directory (env FERRY_STATE_DIR; default ~/.local/state/ferry)\n"
    "  --config PATH     config file (env FERRY_CONFIG; default ~/.config/ferry/config.toml)\n"
    "  -h, --help        this help, or a command's (ferry tail --help)\n"
    "  --version         print ferry's version\n"
    "\n"
    "Exit status: 0 ok, 1 failed or degraded, 2 bad usage, 3 ferryd not running or not\n"
    "answering.\n";

// Every command, for "did you mean" (kept in step with main()'s dispatch).
// clang-format off
constexpr std::string_view kCommands[] = {"emit",   "status",      "init",  "hooks",  "service",
                                          "tail",   "sessions",    "query", "flush",  "deadletter",
                                          "doctor", "completions", "stats", "export", "search",
                                          "transcript", "relay"};
// clang-format on

// Levenshtein distance (insert, delete, substitute; a swap of neighbours counts 1).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min(
          {d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// `ferry stauts`: "unknown command "stauts"; did you mean "status"? (ferry --help lists them)"
int UnknownCommand(std::string_view cmd) {
  std::string_view best;
  size_t best_distance = 3;  // at most 2 edits away, and less than half the word
  for (std::string_view c : kCommands) {
    const size_t dist = EditDistance(cmd, c);
    if (dist < best_distance && dist * 2 < c.size()) {
      best = c;
      best_distance = dist;
    }
  }
  std::string message = "unknown command \"" + std::string(cmd) + "\"";
  if (!best.empty()) message += "; did you mean \"" + std::string(best) + "\"?";
  ferry::client::Complain(message + " (ferry --help lists them)");
  return 2;
}

// `ferry <command> ... --version` prints the version like `ferry --version` (not emit's: its
// arguments are a hook's data and it must stay quiet).
bool AsksVersion(std::string_view cmd, int argc, char** argv) {
  if (cmd == "emit") return false;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") return false;
    if (std::string_view(argv[i]) == "--version") return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  if (AsksVersion(cmd, argc, argv)) {
    std::printf("ferry %s\n", FERRY_VERSION);
    return 0;
  }
  if (cmd == "emit") return ferry::client::RunEmit(argc - 2, argv + 2);
  if (cmd == "status") return ferry::client::RunStatus(argc - 2, argv + 2);
  if (cmd == "init") return ferry::client::RunInit(argc - 2, argv + 2);
  if (cmd == "hooks") return ferry::client::RunHooks(argc - 2, argv + 2);
  if (cmd == "service") return ferry::client::RunService(argc - 2, argv + 2);
  if (cmd == "query") return ferry::client::RunQuery(argc - 2, argv + 2);
  if (cmd == "sessions") return ferry::client::RunSessions(argc - 2, argv + 2);
  if (cmd == "tail") return ferry::client::RunTail(argc - 2, argv + 2);
  if (cmd == "stats") return ferry::client::RunStats(argc - 2, argv + 2);
  if (cmd == "export") return ferry::client::RunExport(argc - 2, argv + 2);
  if (cmd == "search") return ferry::client::RunSearch(argc - 2, argv + 2);
  if (cmd == "transcript") return ferry::client::RunTranscript(argc - 2, argv + 2);
  if (cmd == "flush") return ferry::client::RunFlush(argc - 2, argv + 2);
  if (cmd == "deadletter") return ferry::client::RunDeadletter(argc - 2, argv + 2);
  if (cmd == "completions") return ferry::client::RunCompletions(argc - 2, argv + 2);
  if (cmd == "doctor") return ferry::client::RunDoctor(argc - 2, argv + 2);
  if (cmd == "relay") return ferry::client::RunRelay(argc - 2, argv + 2);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("ferry %s\n", FERRY_VERSION);
    return 0;
  }
  return UnknownCommand(cmd);
}
