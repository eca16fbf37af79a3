// ferryd's configuration: config.toml (toml++), every key defaulted. Reference with every
// key: docs/operations.md#configuration. Parsed at start and again on SIGHUP, on the io
// thread; the result is a plain value copied to whoever needs it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/config/fsync_policy.h"
#include "daemon/redact/redact.h"

namespace ferry {

// One [[sink]] table (docs/sinks.md). Compared whole on reload: a sink whose table changed
// is restarted from its saved cursor; one whose table is unchanged keeps running.
struct SinkConfig {
  std::string name;
  std::string type;  // "http-json" | "otlp-http"
  std::string url;   // as written; otlp-http gets /v1/logs (/v1/traces) appended when missing
  std::string token_file;
  std::string token_env;
  uint64_t max_events = 1000;
  uint64_t max_bytes = 1ull << 20;
  bool gzip = true;
  // zlib level. 1, not zlib's 6: measured here, level 6 took 4-7 ms of CPU per 1000 events
  // (capping one sink near 100k events/s per core) for a body only ~25% smaller.
  int gzip_level = 1;
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds backoff_max{5 * 60 * 1000};
  std::chrono::milliseconds batch_timeout{1000};
  // A sink that has failed every attempt for this long (no delivery in between) makes status
  // degraded, with its last error and next retry (docs/sinks.md "Status"). 0: at once.
  std::chrono::milliseconds degraded_after{60000};
  bool redact = true;
  // TLS: verify the server's certificate and name (on by default). tls_verify = false is an
  // explicit opt-out for a test server; ferry status and --check-config show it.
  bool tls_verify = true;
  std::string ca_file;  // PEM bundle to verify against instead of the system's
  std::vector<std::pair<std::string, std::string>> headers;
  // otlp-http: "logs" (log records, /v1/logs) or "traces" (tool spans, /v1/traces).
  std::string signal = "logs";
  // How the token is sent: "bearer" (Authorization: Bearer <token>) or "basic" (the token is
  // user:password, sent as Authorization: Basic base64(user:password); Langfuse's keys).
  std::string auth = "bearer";
  // traces: a tool call whose end event has not come this long after its start is sent as
  // unfinished (docs/sinks.md "Traces").
  std::chrono::milliseconds span_timeout{60 * 60 * 1000};
  int line = 0;  // where the table starts in the file, for messages

  // The URL requests go to.
  std::string EndpointUrl() const;
  bool SameSettings(const SinkConfig& other) const;
};

struct Config {
  std::string path;  // the file read, or empty when running on defaults

  std::string log_level = "info";
  std::string socket_path;  // resolved: flag > env > config > default
  std::string state_dir;

  // [journal]
  FsyncPolicy fsync = FsyncPolicy::kInterval;
  std::chrono::milliseconds fsync_interval{1000};
  uint64_t segment_bytes = 64ull << 20;
  uint64_t max_bytes = 1ull << 30;
  // journal.max_bytes not set: LoadEffectiveConfig sets max_bytes to DefaultJournalCap().
  bool max_bytes_auto = true;
  // journal.max_age: closed segments every consumer has read go once older (0: off).
  std::chrono::milliseconds journal_max_age{0};
  // Test hook (docs/operations.md, "Retention"): registers a journal consumer of this name
  // whose cursor only STATUS_REQ {"test_consumer_cursor": N} moves. Empty: none.
  std::string test_hold_consumer;

  // [ingest]
  uint64_t max_frame_bytes = 4ull << 20;
  uint64_t max_connections = 1024;
  std::chrono::milliseconds idle_timeout{60000};
  // From a frame's first byte, the whole frame must arrive within this (else the
  // connection is closed): a drip-feed cannot hold a connection slot forever.
  std::chrono::milliseconds frame_timeout{10000};
  uint64_t max_batch_events = 10000;

  // [spool]
  uint64_t dedupe_window = 100000;  // recent event ids remembered (0: no dedupe); ~3.6 MiB full
  // [store]
  bool store_enabled = true;  // false: no ferry.db; the journal's only consumers are sinks
  std::chrono::milliseconds store_batch_interval{200};
  uint64_t store_batch_events = 1000;
  std::chrono::milliseconds session_idle_timeout{30 * 60 * 1000};
  std::chrono::milliseconds store_retain_age{0};  // 0: keep every row
  uint64_t store_retain_rows = 0;                 // 0: no cap
  std::chrono::milliseconds query_timeout{5000};
  uint64_t query_max_rows = 10000;
  bool store_search = true;  // the full-text index behind `ferry search` (docs/queries.md)
  // [archive] (docs/archive.md): transcripts copied into <state>/archive/
  bool archive_enabled = true;
  uint64_t archive_max_bytes = 1ull << 30;

  // [[sink]]
  std::vector<SinkConfig> sinks;
  // [redact] and [[redact.rule]]
  RedactOptions redact;
};

// Loads `path` into *config on top of the defaults. A missing file is fine unless `required`
// (the path was given explicitly). Errors name the key and file:line:column, e.g.
//   /home/u/.config/ferry/config.toml:7:1: unknown key "journal.fsnc" (did you mean
//   "journal.fsync"?)
bool LoadConfig(const std::string& path, bool required, Config* config, std::string* error);
// The same for the text of a config file; `path` only names it in messages. (Tests and
// tests/fuzz/config_fuzzer.cc; LoadConfig reads the file with toml::parse_file.)
bool ParseConfigText(std::string_view text, const std::string& path, Config* config,
                     std::string* error);

// Where ferryd's configuration comes from, kept so SIGHUP can load it the same way: the file
// and the command line's overrides. Precedence: flag, then environment (FERRY_SOCKET,
// FERRY_STATE_DIR), then the file, then the default.
struct ConfigSource {
  std::string path;       // the config file
  bool required = false;  // named by --config or FERRY_CONFIG: missing is an error
  std::string socket_flag;
  std::string state_dir_flag;
  std::string log_level_flag;
};
bool LoadEffectiveConfig(const ConfigSource& source, Config* config, std::string* error);
// What ferryd runs on when the file cannot be used at start (docs/operations.md "A config
// error"): every key at its default, no sinks, and the socket, state dir and log level from the
// command line and the environment as LoadEffectiveConfig takes them.
Config DefaultEffectiveConfig(const ConfigSource& source);

// journal.max_bytes when unset: 10% of the size of the file system holding `state_dir` (or its
// nearest existing parent), at most 1 GiB, at least 1 MiB; 1 GiB when statvfs fails
// (docs/journal-format.md, "Retention").
uint64_t DefaultJournalCap(const std::string& state_dir);

// What a reload would change. `live` lists the keys the daemon applies at once, as
// "key: old -> new"; `restart` names the keys that only take effect at the next start.
// [[sink]] tables are diffed by name: `sinks_added`, `sinks_removed` and `sinks_changed` list
// names, and a reload starts, stops or restarts exactly those sinks (the others keep running,
// and every sink keeps its cursor file).
struct ConfigChanges {
  std::vector<std::string> live;
  std::vector<std::string> restart;
  std::vector<std::string> sinks_added;
  std::vector<std::string> sinks_removed;
  std::vector<std::string> sinks_changed;
  bool redact_changed = false;
  bool empty() const { return live.empty() && restart.empty(); }
};
ConfigChanges DiffConfig(const Config& running, const Config& next);

// Parses "64MiB", "512KiB", "1GB", "4096" (bytes) into bytes.
bool ParseByteSize(const std::string& text, uint64_t* bytes);
// Parses "200ms", "1s", "5m", "1h" into milliseconds.
bool ParseDuration(const std::string& text, std::chrono::milliseconds* out);

}  // namespace ferry
