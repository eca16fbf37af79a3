// Config reload (SIGHUP): reads the config file again and applies in place what a running
// ferryd can change: log level, ingest limits, the fsync policy and interval, the [redact]
// rules, and the [[sink]] set (added sinks start, removed ones stop, changed ones restart from
// their saved cursor; unchanged ones re-read their token). Keys that need a restart (socket,
// state_dir, segment_size, max_bytes, ...) are named in the log and keep their running value.
//
// Errors: an invalid file changes nothing (logged, and kept in ConfigHealth for status until a
// reload succeeds); invalid redact rules keep the running rules (logged) while the rest
// applies. Tells systemd RELOADING=1 first and READY=1 last.
// Thread: the io thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ferry {

struct DaemonParts;
struct Config;
struct ConfigSource;
struct IngestLimits;

// Whether the config file in use loaded, for status (docs/operations.md "A config error").
// Set at start (the file could not be used: ferryd runs on DefaultEffectiveConfig) and by
// every reload (a bad file keeps what ran before: the defaults, or the last good config).
struct ConfigHealth {
  std::string error;          // "path:line:col: what" from the last load; empty when it loaded
  bool on_defaults = false;   // the file has not loaded since start: running on the defaults
  int64_t error_time_ns = 0;  // wall clock of the failed load
  // What the last good load set that only a restart applies ("journal.segment_size: 67108864
  // -> 1048576"), e.g. the socket of a file fixed while ferryd ran on the defaults.
  std::vector<std::string> restart_pending;

  bool ok() const { return error.empty(); }
  // "defaults" | "last_good" (error) or "file" | "defaults" (no file) for status's running_on.
  const char* RunningOn(const Config& running) const;
  // The status problem: "config error at <error>; ferryd runs on defaults; run: ferryd
  // --check-config" (with --config PATH when `source` named the file). Empty when ok().
  std::string Problem(const ConfigSource& source) const;
  // Line and column of the error (0 when it names none, e.g. an unreadable file).
  void Place(const std::string& path, int* line, int* column) const;
};

// The [ingest] limits of `cfg`, as the ingest server takes them (start and reload).
IngestLimits IngestLimitsFrom(const Config& cfg);

// Applies the reloaded config to `parts` (see above) and makes it parts.config.
void ReloadConfig(DaemonParts& parts);

}  // namespace ferry
