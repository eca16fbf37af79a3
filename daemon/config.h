// ferryd's configuration: config.toml (toml++), every key defaulted. Reference with every
// key: docs/operations.md#configuration. Parsed once at start (and on SIGHUP, later), on the
// io thread; the result is a plain value copied to whoever needs it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "daemon/journal_committer.h"

namespace ferry {

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
  // Test hook (docs/operations.md, "Retention"): registers a journal consumer of this name
  // whose cursor only STATUS_REQ {"test_consumer_cursor": N} moves. Empty: none.
  std::string test_hold_consumer;

  // [ingest]
  uint64_t max_frame_bytes = 4ull << 20;
  uint64_t max_connections = 1024;
  std::chrono::milliseconds idle_timeout{60000};
  uint64_t max_batch_events = 10000;
};

// Loads `path` into *config on top of the defaults. A missing file is fine unless `required`
// (the path was given explicitly). Errors name the key and file:line:column, e.g.
//   /home/u/.config/ferry/config.toml:7:1: unknown key "journal.fsnc" (did you mean "journal.fsync"?)
bool LoadConfig(const std::string& path, bool required, Config* config, std::string* error);

// Parses "64MiB", "512KiB", "1GB", "4096" (bytes) into bytes.
bool ParseByteSize(const std::string& text, uint64_t* bytes);
// Parses "200ms", "1s", "5m", "1h" into milliseconds.
bool ParseDuration(const std::string& text, std::chrono::milliseconds* out);

}  // namespace ferry
