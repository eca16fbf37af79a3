// ferryd: startup, flags and logging; everything else lives in Daemon.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "daemon/app/daemon.h"
#include "daemon/base/fault_injection.h"
#include "daemon/base/logging.h"
#include "daemon/config/config.h"
#include "daemon/sink/encode.h"
#include "daemon/sink/http_client.h"
#include "daemon/sink/sink.h"
#include "proto/paths.h"

int main(int argc, char** argv) {
  CLI::App app{
      "ferryd: the ferry daemon. Accepts hook events on a Unix socket, makes them durable in\n"
      "a sequenced journal, and serves `ferry status`. Runs in the foreground (systemd style)."};
  std::string config_path, socket_path, state_dir, log_level;
  bool check_config = false, version = false;
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
  app.add_flag("--check-config", check_config, "validate the configuration, print it and exit");
  app.add_flag("--version", version, "print the version and exit");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help prints and exits 0; any bad flag or value is a usage error, exit 2 like a bad
    // config file (CLI11's own codes, such as 105 or 109, mean nothing to a service manager).
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (version) {
    std::cout << "ferryd " << FERRY_VERSION << "\n";
    return 0;
  }

  ferry::ConfigSource source;
  source.required = !config_path.empty() || ferry::proto::ConfigPathFromEnv();
  source.path = config_path.empty() ? ferry::proto::DefaultConfigPath() : config_path;
  source.socket_flag = socket_path;
  source.state_dir_flag = state_dir;
  source.log_level_flag = log_level;
  ferry::Config config;
  std::string error;
  if (!ferry::LoadEffectiveConfig(source, &config, &error)) {
    std::cerr << "ferryd: " << error << "\n";
    return 2;
  }
  config_path = source.path;

  if (check_config) {
    std::cout << "config: "
              << (config.path.empty() ? config_path + " (absent; defaults)" : config.path)
              << " OK\n"
              << "socket = " << config.socket_path << "\n"
              << "state_dir = " << config.state_dir << "\n"
              << "log_level = " << config.log_level << "\n"
              << "journal.fsync = " << ferry::FsyncPolicyName(config.fsync) << "\n"
              << "journal.fsync_interval = " << config.fsync_interval.count() << "ms\n"
              << "journal.segment_size = " << config.segment_bytes << "\n"
              << "journal.max_bytes = " << config.max_bytes << "\n"
              << "ingest.max_frame = " << config.max_frame_bytes << "\n"
              << "ingest.max_connections = " << config.max_connections << "\n"
              << "ingest.idle_timeout = " << config.idle_timeout.count() << "ms\n"
              << "ingest.frame_timeout = " << config.frame_timeout.count() << "ms\n"
              << "ingest.max_batch_events = " << config.max_batch_events << "\n"
              << "store.enabled = " << (config.store_enabled ? "true" : "false") << "\n"
              << "store.batch_interval = " << config.store_batch_interval.count() << "ms\n"
              << "store.batch_events = " << config.store_batch_events << "\n"
              << "store.session_idle_timeout = " << config.session_idle_timeout.count() << "ms\n"
              << "store.retain_age = " << config.store_retain_age.count() << "ms\n"
              << "store.retain_rows = " << config.store_retain_rows << "\n"
              << "store.query_timeout = " << config.query_timeout.count() << "ms\n"
              << "store.query_max_rows = " << config.query_max_rows << "\n"
              << "redact.builtin = " << (config.redact.builtin ? "true" : "false") << "\n"
              << "redact.local = " << (config.redact.local ? "true" : "false") << "\n"
              << "redact.rules = " << config.redact.rules.size() << "\n";
    if (config.sinks.empty()) std::cout << "sinks: none (events stay on this machine)\n";
    for (const ferry::SinkConfig& sink : config.sinks) {
      std::cout << "sink " << sink.name << ": " << sink.type << " -> "
                << ferry::UrlForDisplay(sink.EndpointUrl()) << "; max_events " << sink.max_events
                << ", max_bytes " << sink.max_bytes << ", gzip "
                << (sink.gzip ? "level " + std::to_string(sink.gzip_level) : std::string("off"))
                << ", timeout " << sink.timeout.count() << "ms, backoff_max "
                << sink.backoff_max.count() << "ms, batch_timeout " << sink.batch_timeout.count()
                << "ms, redact " << (sink.redact ? "on" : "off") << ", tls_verify "
                << (sink.tls_verify ? "on" : "OFF")
                << (sink.ca_file.empty() ? "" : " (ca_file " + sink.ca_file + ")") << ", token "
                << (!sink.token_file.empty()  ? "from file " + sink.token_file
                    : !sink.token_env.empty() ? "from $" + sink.token_env
                                              : std::string("none"))
                << "\n";
      if (!sink.tls_verify) {
        std::cerr << "ferryd: warning: sink " << sink.name
                  << ": tls_verify = false: the server's certificate is not checked, so anyone on "
                     "the path can read and change what is sent\n";
      }
      std::string token;
      const std::string problem = ferry::ReadSinkToken(sink, &token);
      if (!problem.empty()) {
        std::cerr << "ferryd: warning: sink " << sink.name << ": " << problem
                  << " (the sink would stay paused until this is fixed)\n";
      }
    }
    return 0;
  }

  // Everything ferryd creates (state dir, journal, ferry.db and its -wal/-shm, cursors, dead
  // letters, spool) is the user's alone, whatever umask it was started with (by hand, a
  // umask of 022 made ferry.db readable by every local user).
  ::umask(077);
  ferry::SetUpLogging(config.log_level);
  // One descriptor per connection: take the whole hard limit, so the soft default (often
  // 1024) does not cap ingest.max_connections (which is clamped below the limit).
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
  if (const char* faults = std::getenv("FERRY_TEST_FAULTS"); faults && *faults) {
    if (!ferry::fault::ArmFromSpec(faults)) {
      spdlog::critical("FERRY_TEST_FAULTS is malformed: {}", faults);
      return 2;
    }
    spdlog::warn("test fault injection armed: {}", faults);
  }
  try {
    ferry::CurlGlobalInit();  // before any thread: libcurl's global state is not thread-safe
    ferry::Daemon daemon(std::move(config), std::move(source));
    return daemon.Run();
  } catch (const std::exception& e) {
    spdlog::critical("cannot start: {}", e.what());
    return 1;
  }
}
