// ferry: the client. `emit` is the hook hot path; keep its start free of work.
#include <cstdio>
#include <cstring>
#include <string_view>

#include "client/common.h"
#include "client/completions.h"
#include "client/doctor.h"
#include "client/emit.h"
#include "client/hooks.h"
#include "client/init.h"
#include "client/query.h"
#include "client/service.h"
#include "client/sinks.h"
#include "client/status.h"
#include "client/tail.h"

namespace {

constexpr const char* kHelp =
    "ferry: keep every shell and AI-agent hook event, without slowing anything down.\n"
    "\n"
    "usage: ferry <command> [options]\n"
    "\n"
    "commands:\n"
    "  emit     send one event to ferryd (the hook hot path; always exits 0 unless --strict)\n"
    "  status   show ferryd's state (--json for machines); exit 0 ok, 1 degraded, 3 not running\n"
    "  init     print the bash, zsh or fish integration (eval \"$(ferry init zsh)\")\n"
    "  hooks    install or uninstall ferry's hooks in Claude Code, Codex, Cursor or Gemini CLI\n"
    "  service  install|uninstall ferryd as a systemd user service (--dry-run shows how)\n"
    "  query    run read-only SQL on the event store (ferry query --help)\n"
    "  sessions recent sessions with counts and durations\n"
    "  tail     print journal events (-f follows new ones)\n"
    "  flush    send what the upstream sinks have not yet sent, now (--wait to wait for it)\n"
    "  deadletter  list, replay or purge the events a sink's server rejected\n"
    "  completions  print the bash, zsh or fish completion script (ferry completions --help)\n"
    "  doctor   check ferryd, permissions, config, hooks, shell, spool and sinks; print fixes\n"
    "\n"
    "options for every command:\n"
    "  --socket PATH     ferryd's socket (env FERRY_SOCKET; default\n"
    "                    $XDG_RUNTIME_DIR/ferry/ferry.sock or /tmp/ferry-$UID/ferry.sock)\n"
    "  --state-dir DIR   state directory (env FERRY_STATE_DIR; default ~/.local/state/ferry)\n"
    "  --config PATH     config file (env FERRY_CONFIG; default ~/.config/ferry/config.toml)\n"
    "  --help, --version\n"
    "\n"
    "`ferry <command> --help` explains each command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kHelp, stderr);
    return 2;
  }
  const std::string_view cmd = argv[1];
  // `ferry <command> --version` prints the version too (up to a `--`, after which words are
  // arguments).
  for (int i = 2; i < argc && std::string_view(argv[i]) != "--"; ++i) {
    if (std::string_view(argv[i]) == "--version") {
      std::printf("ferry %s\n", FERRY_VERSION);
      return 0;
    }
  }
  if (cmd == "emit") return ferry::client::RunEmit(argc - 2, argv + 2);
  if (cmd == "status") return ferry::client::RunStatus(argc - 2, argv + 2);
  if (cmd == "init") return ferry::client::RunInit(argc - 2, argv + 2);
  if (cmd == "hooks") return ferry::client::RunHooks(argc - 2, argv + 2);
  if (cmd == "service") return ferry::client::RunService(argc - 2, argv + 2);
  if (cmd == "query") return ferry::client::RunQuery(argc - 2, argv + 2);
  if (cmd == "sessions") return ferry::client::RunSessions(argc - 2, argv + 2);
  if (cmd == "tail") return ferry::client::RunTail(argc - 2, argv + 2);
  if (cmd == "flush") return ferry::client::RunFlush(argc - 2, argv + 2);
  if (cmd == "deadletter") return ferry::client::RunDeadletter(argc - 2, argv + 2);
  if (cmd == "completions") return ferry::client::RunCompletions(argc - 2, argv + 2);
  if (cmd == "doctor") return ferry::client::RunDoctor(argc - 2, argv + 2);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kHelp, stdout);
    return 0;
  }
  if (cmd == "--version" || cmd == "version") {
    std::printf("ferry %s\n", FERRY_VERSION);
    return 0;
  }
  ferry::client::Complain("unknown command \"" + std::string(cmd) + "\" (ferry --help lists them)");
  return 2;
}
