// ferryd: startup, flags and logging; everything else lives in Daemon.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <iostream>

#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <CLI/CLI.hpp>

#include "daemon/app/daemon.h"
#include "daemon/app/offline.h"
#include "daemon/base/fault_injection.h"
#include "daemon/base/logging.h"
#include "daemon/config/check_print.h"
#include "daemon/config/config.h"
#include "daemon/sink/encode.h"
#include "daemon/sink/sink.h"
#include "proto/paths.h"

namespace {

// One descriptor per connection: take the whole hard limit, so the soft default (often 1024)
// does not cap ingest.max_connections (which is clamped below the limit).
void RaiseOpenFileLimit() {
  if (struct rlimit rl{}; ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    const rlim_t soft = rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &rl) == 0) {
      spdlog::info("raised the open-file limit from {} to {}", soft, rl.rlim_max);
    } else {
      spdlog::warn("cannot raise the open-file limit from {} to {}: {}", soft, rl.rlim_max,
                   std::strerror(errno));
    }
  }
}

// In the style of `ferry --help`; the usage line names ferryd, not the path it ran from.
constexpr const char* kHelp =
    "ferryd: the ferry daemon. Accepts hook events on a Unix socket, makes them durable in a\n"
    "sequenced journal, keeps ferry.db for queries, forwards events to the configured sinks\n"
    "and answers `ferry`. Runs in the foreground and logs to stderr (systemd style);\n"
    "`ferry service install` runs it as a systemd user service.\n"
    "\n"
    "usage: ferryd [options]\n"
    "\n"
    "options:\n"
    "  --config PATH      config file (env FERRY_CONFIG; default\n"
    "                     $XDG_CONFIG_HOME/ferry/config.toml, ~/.config/ferry/config.toml;\n"
    "                     a missing default file is fine: every key has a default)\n"
    "  --socket PATH      the socket to listen on (env FERRY_SOCKET; default\n"
    "                     $XDG_RUNTIME_DIR/ferry/ferry.sock or /tmp/ferry-$UID/ferry.sock)\n"
    "  --state-dir DIR    journal, ferry.db, spool and dead letters (env FERRY_STATE_DIR;\n"
    "                     default $XDG_STATE_HOME/ferry, ~/.local/state/ferry)\n"
    "  --log-level LEVEL  trace, debug, info, warn, error, critical or off (default:\n"
    "                     log_level in the config file, else info)\n"
    "  --check-config     validate the config file, print the effective values and exit\n"
    "                     (0 valid, 1 valid with warnings under --strict, 2 invalid)\n"
    "  --quiet            with --check-config: print only errors and warnings\n"
    "  --strict           with --check-config: exit 1 when there is a warning\n"
    "  --help, -h         print this help and exit\n"
    "  --version          print the version and exit\n"
    "\n"
    "Signals: SIGHUP re-reads the config file; SIGTERM or SIGINT stop after acking what is in\n"
    "flight. A bad config file does not stop ferryd: it runs on the defaults (or, on SIGHUP,\n"
    "keeps the last good config) and `ferry status` names the error. Exit status: 0 stopped\n"
    "cleanly, 1 could not start, 2 bad usage (or --check-config found the file invalid).\n"
    "See ferryd(8), ferry.toml(5) and docs/operations.md.\n";

}  // namespace

// Flags, config, then start-up, in the order they must happen (one read from top to bottom).
int main(int argc, char** argv) {
  // Before any SQLite call (it must precede sqlite3_initialize): no global memory statistics,
  // so sqlite3_malloc/free take no process-wide mutex (~3% of the store thread's CPU).
  sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
  // The local time zone, read once before any thread: localtime_r then reads no file and
  // writes no shared state (store/source_stats.cc LocalDayStart runs on two threads).
  ::tzset();
  CLI::App app{"", "ferryd"};  // --help prints kHelp
  std::string config_path, socket_path, state_dir, log_level;
  bool check_config = false, version = false, quiet = false, strict = false;
  bool help = false;  // kHelp, not CLI11's generated text
  app.set_help_flag();
  app.add_flag("-h,--help", help, "print this help and exit");
  app.add_option("--config", config_path,
                 "config file (default: $FERRY_CONFIG, else "
                 "$XDG_CONFIG_HOME/ferry/config.toml; missing is fine)");
  app.add_option("--socket", socket_path,
                 "socket path (default: $FERRY_SOCKET, else "
                 "$XDG_RUNTIME_DIR/ferry/ferry.sock)");
  app.add_option("--state-dir", state_dir,
                 "state directory (default: $FERRY_STATE_DIR, else "
                 "$XDG_STATE_HOME/ferry)");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error (default: info)")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  CLI::Option* check_option =
      app.add_flag("--check-config", check_config,
                   "validate the configuration, print it and exit: 0 valid, 2 invalid (the error\n"
                   "names file:line:column), 1 valid with warnings under --strict");
  app.add_flag("--quiet", quiet, "with --check-config: print only errors and warnings")
      ->needs(check_option);
  app.add_flag("--strict", strict, "with --check-config: exit 1 when there is a warning")
      ->needs(check_option);
  app.add_flag("--version", version, "print the version and exit");
  bool serve_offline = false;  // internal: ferry starts it so (daemon/app/offline.h)
  int offline_fd = -1;
  app.add_flag("--serve-offline", serve_offline)->group("");
  app.add_option("--offline-fd", offline_fd)->group("");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // Any bad flag or value is a usage error, exit 2 like a bad config file (CLI11's own
    // codes, such as 105 or 109, mean nothing to a service manager).
    std::cerr << "ferryd: " << e.what() << " (ferryd --help lists the options)\n";
    return 2;
  }
  if (help) {
    std::cout << kHelp;
    return 0;
  }
  if (version) {
    std::cout << "ferryd " << FERRY_VERSION << "\n";
    return 0;
  }

  if (serve_offline) return ferry::ServeOffline({offline_fd, state_dir, config_path});

  ferry::ConfigSource source;
  source.required = !config_path.empty() || ferry::proto::ConfigPathFromEnv();
  source.path = config_path.empty() ? ferry::proto::DefaultConfigPath() : config_path;
  source.socket_flag = socket_path;
  source.state_dir_flag = state_dir;
  source.log_level_flag = log_level;
  ferry::Config config;
  std::string config_error;
  const bool config_ok = ferry::LoadEffectiveConfig(source, &config, &config_error);
  config_path = source.path;

  if (check_config) {
    if (!config_ok) {
      std::cerr << "ferryd: " << config_error << "\n";
      return 2;
    }
    ferry::ConfigPrintHooks hooks;
    hooks.url_for_display = [](std::string_view url) { return ferry::UrlForDisplay(url); };
    hooks.token_problem = [](const ferry::SinkConfig& sink) {
      std::string token;
      return ferry::ReadSinkToken(sink, &token);
    };
    std::ostream null_out(nullptr);  // --quiet: a stream without a buffer writes nothing
    const int warnings = ferry::PrintCheckedConfig(config, config_path, hooks,
                                                   quiet ? null_out : std::cout, std::cerr);
    return strict && warnings > 0 ? 1 : 0;
  }
  // A bad file does not stop ferryd (under systemd that would take the socket down with it and
  // spool every hook): it serves on the defaults and says so in the log and in `ferry status`.
  if (!config_ok) config = ferry::DefaultEffectiveConfig(source);

  // Everything ferryd creates (state dir, journal, ferry.db and its -wal/-shm, cursors, dead
  // letters, spool) is the user's alone, whatever umask it was started with (by hand, a
  // umask of 022 made ferry.db readable by every local user).
  ::umask(077);
  ferry::SetUpLogging(config.log_level);
  RaiseOpenFileLimit();
  if (const char* faults = std::getenv("FERRY_TEST_FAULTS"); faults && *faults) {
    if (!ferry::fault::ArmFromSpec(faults)) {
      spdlog::critical("FERRY_TEST_FAULTS is malformed: {}", faults);
      return 2;
    }
    spdlog::warn("test fault injection armed: {}", faults);
  }
  try {
    ferry::Daemon daemon(std::move(config), std::move(source), std::move(config_error));
    return daemon.Run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
